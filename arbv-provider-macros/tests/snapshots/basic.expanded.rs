impl Basic {
    /// Echo back the message.
    pub async fn echo(&self, payload: Echo) -> Value {
        json!({ "echo" : payload.message })
    }
    /// Add two numbers.
    pub fn add_numbers(&self, payload: AddNumbers) -> Value {
        json!({ "sum" : payload.a + payload.b })
    }
    /// Greet someone in English, Spanish, French or German.
    pub async fn greet(&self, payload: Greet) -> Value {
        let hello = match payload.language.as_str() {
            "es" => "Hola",
            "fr" => "Bonjour",
            "de" => "Hallo",
            _ => "Hello",
        };
        json!({ "message" : format!("{hello}, {}!", payload.name) })
    }
    /// Create a user profile with an API account; answers with what it stored (never the key).
    pub async fn create_profile(
        &self,
        payload: CreateProfile,
        account: ApiAccount,
    ) -> Result<Value, ActionError> {
        Ok(
            json!(
                { "username" : payload.username, "profile" : payload.profile, "tags" :
                payload.tags, "permissions" : account.permissions, }
            ),
        )
    }
    /// Total an order: Σ quantity × price.
    pub async fn process_order(&self, payload: Order) -> Value {
        let total: f64 = payload
            .items
            .iter()
            .map(|i| f64::from(i.quantity) * i.price)
            .sum();
        json!({ "order_id" : payload.order_id, "total" : total })
    }
}
const _: () = {
    #[allow(unused_imports)]
    use action as _;
    #[automatically_derived]
    impl ::arbv_provider::__private::Provider for Basic {
        fn definition() -> ::arbv_provider::__private::ProviderDef<Self> {
            let mut def = ::arbv_provider::__private::ProviderDef::new("basic-provider");
            def.action(
                    "echo",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let payload = call.payload::<Echo>()?;
                        let output = ::arbv_provider::__private::Json(
                            Self::echo(&this, payload).await,
                        );
                        ::arbv_provider::__private::Ok(
                            {
                                #[allow(unused_imports)]
                                use ::arbv_provider::__private::__probe::{
                                    AnyResponse as _, JsonValue as _, TransientResult as _,
                                };
                                (&output).__arbv_response_kind()
                            }
                                .into_response(output),
                        )
                    },
                )
                .description("Echo back the message.")
                .payload::<Echo>();
            def.blocking_action(
                    "add_numbers",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    {
                        let payload = call.payload::<AddNumbers>()?;
                        let output = ::arbv_provider::__private::Json(
                            Self::add_numbers(&this, payload),
                        );
                        ::arbv_provider::__private::Ok(
                            {
                                #[allow(unused_imports)]
                                use ::arbv_provider::__private::__probe::{
                                    AnyResponse as _, JsonValue as _, TransientResult as _,
                                };
                                (&output).__arbv_response_kind()
                            }
                                .into_response(output),
                        )
                    },
                )
                .description("Add two numbers.")
                .payload::<AddNumbers>();
            def.action(
                    "greet",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let payload = call.payload::<Greet>()?;
                        let output = ::arbv_provider::__private::Json(
                            Self::greet(&this, payload).await,
                        );
                        ::arbv_provider::__private::Ok(
                            {
                                #[allow(unused_imports)]
                                use ::arbv_provider::__private::__probe::{
                                    AnyResponse as _, JsonValue as _, TransientResult as _,
                                };
                                (&output).__arbv_response_kind()
                            }
                                .into_response(output),
                        )
                    },
                )
                .description("Greet someone in English, Spanish, French or German.")
                .payload::<Greet>();
            def.action(
                    "create_profile",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let payload = call.payload::<CreateProfile>()?;
                        let account = call.account::<ApiAccount>()?;
                        let output = Self::create_profile(&this, payload, account).await;
                        ::arbv_provider::__private::Ok(
                            {
                                #[allow(unused_imports)]
                                use ::arbv_provider::__private::__probe::{
                                    AnyResponse as _, JsonValue as _, TransientResult as _,
                                };
                                (&output).__arbv_response_kind()
                            }
                                .into_response(output),
                        )
                    },
                )
                .description(
                    "Create a user profile with an API account; answers with what it stored (never the key).",
                )
                .payload::<CreateProfile>()
                .account::<ApiAccount>();
            def.action(
                    "process_order",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let payload = call.payload::<Order>()?;
                        let output = ::arbv_provider::__private::Json(
                            Self::process_order(&this, payload).await,
                        );
                        ::arbv_provider::__private::Ok(
                            {
                                #[allow(unused_imports)]
                                use ::arbv_provider::__private::__probe::{
                                    AnyResponse as _, JsonValue as _, TransientResult as _,
                                };
                                (&output).__arbv_response_kind()
                            }
                                .into_response(output),
                        )
                    },
                )
                .description("Total an order: Σ quantity × price.")
                .payload::<Order>();
            def
        }
    }
};
