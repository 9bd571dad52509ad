impl Ads {
    /// Echo back the message.
    async fn echo(&self, payload: Echo) -> Result<Value, ActionError> {
        Ok(json!({ "echo" : payload.message }))
    }
    /// Insights for one ad account.
    pub async fn insights(
        &self,
        ctx: &Context,
        payload: Range,
        account: FbAccount,
    ) -> Result<Insights, ActionError> {
        self.fetch(ctx, payload, account).await
    }
    async fn maybe(&self, account: Option<Acc>, ctx: Context) -> ActionResponse {
        ActionResponse::success(account.is_some())
    }
    fn ping(&self) -> &'static str {
        "pong"
    }
    fn version() {}
    async fn shared(&self) {}
    async fn weather(&self, payload: City, account: Key) -> Result<Value, ApiError> {
        self.fetch(payload, account).await
    }
    fn by_function(&self, payload: City) -> Value {
        json!(payload.city)
    }
    fn helper(&self) {}
}
const _: () = {
    #[allow(unused_imports)]
    use action as _;
    #[automatically_derived]
    impl ::arbv_provider::__private::Provider for Ads {
        fn definition() -> ::arbv_provider::__private::ProviderDef<Self> {
            let mut def = ::arbv_provider::__private::ProviderDef::new("ads-provider");
            def.rate_limit(
                ::arbv_provider::__private::in_process_monitor(
                    ::arbv_provider::__private::Some(
                        ::arbv_provider::__private::RateSpec::new(
                            5u32,
                            ::arbv_provider::__private::Duration::from_nanos(
                                1000000000u64,
                            ),
                        ),
                    ),
                    ::arbv_provider::__private::None,
                    ::arbv_provider::__private::None,
                ),
            );
            def.cache_backend(ads_cache());
            def.action(
                    "echo",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let payload = call.payload::<Echo>()?;
                        let output = Self::echo(&this, payload).await;
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
            def.action(
                    "get_insights",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let payload = call.payload::<Range>()?;
                        let account = call.account::<FbAccount>()?;
                        let ctx = ::core::clone::Clone::clone(call.context());
                        let output = Self::insights(&this, &ctx, payload, account).await;
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
                .description("Insights for one ad account.")
                .payload::<Range>()
                .account::<FbAccount>()
                .timeout(::arbv_provider::__private::Duration::from_nanos(1500000000u64))
                .rate_limit(
                    ::arbv_provider::__private::in_process_monitor(
                        ::arbv_provider::__private::Some(
                            ::arbv_provider::__private::RateSpec::new(
                                200u32,
                                ::arbv_provider::__private::Duration::from_nanos(
                                    3600000000000u64,
                                ),
                            ),
                        ),
                        ::arbv_provider::__private::Some(20u32),
                        ::arbv_provider::__private::None,
                    ),
                )
                .per("account.ad_account_id")
                .on_limit(::arbv_provider::__private::OnLimit::Wait);
            def.action(
                    "maybe",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let account = call
                            .account::<::arbv_provider::__private::Option<Acc>>()?;
                        let ctx = ::core::clone::Clone::clone(call.context());
                        let output = Self::maybe(&this, account, ctx).await;
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
                .optional_account::<Acc>();
            def.blocking_action(
                    "ping",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        _call: ::arbv_provider::__private::Call|
                    {
                        let output = ::arbv_provider::__private::Json(Self::ping(&this));
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
                .description("Answers pong.")
                .no_rate_limit();
            def.blocking_action(
                    "version",
                    |
                        _this: ::arbv_provider::__private::Arc<Self>,
                        _call: ::arbv_provider::__private::Call|
                    {
                        let output = ::arbv_provider::__private::Json(Self::version());
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
                .rate_limit(
                    ::arbv_provider::__private::in_process_monitor(
                        ::arbv_provider::__private::Some(
                            ::arbv_provider::__private::RateSpec::new(
                                5u32,
                                ::arbv_provider::__private::Duration::from_nanos(
                                    1000000000u64,
                                ),
                            ),
                        ),
                        ::arbv_provider::__private::None,
                        ::arbv_provider::__private::Some(
                            ::arbv_provider::__private::Duration::from_nanos(
                                250000000u64,
                            ),
                        ),
                    ),
                );
            def.action(
                    "shared",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        _call: ::arbv_provider::__private::Call|
                    async move {
                        let output = ::arbv_provider::__private::Json(
                            Self::shared(&this).await,
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
                .rate_limit(shared_budget());
            def.action(
                    "weather",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    async move {
                        let payload = call.payload::<City>()?;
                        let account = call.account::<Key>()?;
                        let output = Self::weather(&this, payload, account).await;
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
                .payload::<City>()
                .account::<Key>()
                .cache(
                    ::arbv_provider::__private::cache_in_redis(
                        ::arbv_provider::__private::CacheSpec::new(
                                ::arbv_provider::__private::Duration::from_nanos(
                                    600000000000u64,
                                ),
                            )
                            .key_paths(["payload.city", "account.api_key"])
                            .refresh_flag("refresh"),
                    ),
                )
                .retry_with_attempt_timeout(
                    ::arbv_provider::__private::RetryPolicy::attempts(3u32)
                        .backoff(
                            ::arbv_provider::__private::Duration::from_nanos(
                                200000000u64,
                            ),
                            ::arbv_provider::__private::Duration::from_nanos(
                                5000000000u64,
                            ),
                        ),
                    ::arbv_provider::__private::Duration::from_nanos(2000000000u64),
                );
            def.blocking_action(
                    "by_function",
                    |
                        this: ::arbv_provider::__private::Arc<Self>,
                        mut call: ::arbv_provider::__private::Call|
                    {
                        let payload = call.payload::<City>()?;
                        let output = ::arbv_provider::__private::Json(
                            Self::by_function(&this, payload),
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
                .payload::<City>()
                .cache(
                    ::arbv_provider::__private::CacheSpec::new(
                            ::arbv_provider::__private::Duration::from_nanos(
                                3600000000000u64,
                            ),
                        )
                        .key_fn(|payload: &City| city_key(payload)),
                )
                .retry(::arbv_provider::__private::RetryPolicy::attempts(2u32));
            def
        }
    }
};
