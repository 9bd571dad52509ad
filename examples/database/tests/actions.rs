//! The actions called as plain methods, each test on a database of its own on the real
//! PostgreSQL.

mod common;

use arbv_provider::ActionError;
use common::TestDatabase;
use database::{
    CreateUser, Database, DatabaseConfig, Deleted, ListUsers, Transfer, UpdateUser, User, UserId,
};

/// The provider on a fresh database, migrated; `None` when the PostgreSQL tests are skipped.
async fn provider() -> Option<(TestDatabase, Database)> {
    let test_database = TestDatabase::create().await?;
    let config = DatabaseConfig::new(test_database.url()).unwrap();
    let database = Database::connect(&config).await.unwrap();
    Some((test_database, database))
}

fn new_user(name: &str, email: &str, balance_cents: i64) -> CreateUser {
    CreateUser {
        name: name.into(),
        email: email.into(),
        balance_cents,
    }
}

fn code(error: &ActionError) -> &str {
    error.code().unwrap_or("<none>")
}

async fn balances(database: &Database) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT id, balance_cents FROM users ORDER BY id")
        .fetch_all(database.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_is_created_read_updated_listed_and_deleted() {
    let Some((_db, database)) = provider().await else {
        return;
    };
    let ada = database
        .create_user(new_user("Ada", "ada@example.com", 1_000))
        .await
        .unwrap();
    assert!(ada.id > 0);
    assert_eq!(
        (ada.name.as_str(), ada.email.as_str(), ada.balance_cents),
        ("Ada", "ada@example.com", 1_000)
    );
    let read = database.get_user(UserId { user_id: ada.id }).await.unwrap();
    assert_eq!(read, ada);

    let renamed = database
        .update_user(UpdateUser {
            user_id: ada.id,
            name: Some("Ada Lovelace".into()),
            email: None,
        })
        .await
        .unwrap();
    assert_eq!(renamed.name, "Ada Lovelace");
    assert_eq!(renamed.email, ada.email, "a field not given is kept");
    let moved = database
        .update_user(UpdateUser {
            user_id: ada.id,
            name: None,
            email: Some("ada@analytical.engine".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (moved.name.as_str(), moved.email.as_str()),
        ("Ada Lovelace", "ada@analytical.engine")
    );
    assert_eq!(
        (moved.balance_cents, moved.created_at),
        (1_000, ada.created_at)
    );

    let deleted = database
        .delete_user(UserId { user_id: ada.id })
        .await
        .unwrap();
    assert_eq!(deleted, Deleted { deleted: true });
    let gone = database
        .get_user(UserId { user_id: ada.id })
        .await
        .unwrap_err();
    assert_eq!(code(&gone), "NOT_FOUND");
}

#[tokio::test]
async fn users_are_listed_by_id_a_page_at_a_time_with_the_total() {
    let Some((_db, database)) = provider().await else {
        return;
    };
    let mut created: Vec<User> = Vec::new();
    for i in 0..25 {
        created.push(
            database
                .create_user(new_user(
                    &format!("user {i}"),
                    &format!("u{i}@example.com"),
                    i,
                ))
                .await
                .unwrap(),
        );
    }
    let first = database.list_users(ListUsers::default()).await.unwrap();
    assert_eq!(first.total, 25);
    assert_eq!(
        first.users,
        created[..20],
        "the default page is the first 20 by id"
    );
    let rest = database
        .list_users(ListUsers {
            limit: 10,
            offset: 20,
        })
        .await
        .unwrap();
    assert_eq!(rest.users, created[20..]);
    assert_eq!(rest.total, 25);
    let past_the_end = database
        .list_users(ListUsers {
            limit: 10,
            offset: 100,
        })
        .await
        .unwrap();
    assert!(past_the_end.users.is_empty());
    assert_eq!(past_the_end.total, 25);
}

#[tokio::test]
async fn an_email_is_taken_once_whatever_its_case() {
    let Some((_db, database)) = provider().await else {
        return;
    };
    let ada = database
        .create_user(new_user("Ada", "ada@example.com", 0))
        .await
        .unwrap();
    let again = database
        .create_user(new_user("Other Ada", "ADA@example.com", 0))
        .await
        .unwrap_err();
    assert_eq!(code(&again), "CONFLICT", "{}", again.message());
    let grace = database
        .create_user(new_user("Grace", "grace@example.com", 0))
        .await
        .unwrap();
    let taken = database
        .update_user(UpdateUser {
            user_id: grace.id,
            name: Some("Grace Hopper".into()),
            email: Some(ada.email.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&taken), "CONFLICT");
    let unchanged = database
        .get_user(UserId { user_id: grace.id })
        .await
        .unwrap();
    assert_eq!(unchanged, grace, "a refused update changes nothing");
}

#[tokio::test]
async fn a_missing_user_is_not_found_by_every_action() {
    let Some((_db, database)) = provider().await else {
        return;
    };
    let ada = database
        .create_user(new_user("Ada", "ada@example.com", 100))
        .await
        .unwrap();
    let missing = ada.id + 1000;
    let errors = [
        database
            .get_user(UserId { user_id: missing })
            .await
            .unwrap_err(),
        database
            .update_user(UpdateUser {
                user_id: missing,
                name: Some("x".into()),
                email: None,
            })
            .await
            .unwrap_err(),
        database
            .delete_user(UserId { user_id: missing })
            .await
            .unwrap_err(),
        database
            .transfer(Transfer {
                from_user_id: ada.id,
                to_user_id: missing,
                amount_cents: 1,
            })
            .await
            .unwrap_err(),
        database
            .transfer(Transfer {
                from_user_id: missing,
                to_user_id: ada.id,
                amount_cents: 1,
            })
            .await
            .unwrap_err(),
    ];
    for error in &errors {
        assert_eq!(code(error), "NOT_FOUND", "{}", error.message());
        assert_eq!(error.details()["user_id"], missing);
    }
    assert_eq!(balances(&database).await, [(ada.id, 100)]);
}

#[tokio::test]
async fn an_update_without_a_field_is_refused() {
    let Some((_db, database)) = provider().await else {
        return;
    };
    let ada = database
        .create_user(new_user("Ada", "ada@example.com", 0))
        .await
        .unwrap();
    let error = database
        .update_user(UpdateUser {
            user_id: ada.id,
            name: None,
            email: None,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&error), "INVALID_PARAMETER");
}

#[tokio::test]
async fn a_transfer_moves_money_or_changes_nothing() {
    let Some((_db, database)) = provider().await else {
        return;
    };
    let ada = database
        .create_user(new_user("Ada", "ada@example.com", 1_000))
        .await
        .unwrap();
    let grace = database
        .create_user(new_user("Grace", "grace@example.com", 50))
        .await
        .unwrap();
    let done = database
        .transfer(Transfer {
            from_user_id: ada.id,
            to_user_id: grace.id,
            amount_cents: 300,
        })
        .await
        .unwrap();
    assert_eq!((done.from.id, done.from.balance_cents), (ada.id, 700));
    assert_eq!((done.to.id, done.to.balance_cents), (grace.id, 350));

    let short = database
        .transfer(Transfer {
            from_user_id: grace.id,
            to_user_id: ada.id,
            amount_cents: 351,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&short), "INSUFFICIENT_FUNDS", "{}", short.message());
    assert_eq!(short.details()["balance_cents"], 350);
    assert_eq!(
        balances(&database).await,
        [(ada.id, 700), (grace.id, 350)],
        "a refused transfer changes nothing"
    );

    let all = database
        .transfer(Transfer {
            from_user_id: grace.id,
            to_user_id: ada.id,
            amount_cents: 350,
        })
        .await
        .unwrap();
    assert_eq!(all.from.balance_cents, 0, "a balance may reach zero");

    let to_self = database
        .transfer(Transfer {
            from_user_id: ada.id,
            to_user_id: ada.id,
            amount_cents: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&to_self), "INVALID_PARAMETER");

    database
        .transfer(Transfer {
            from_user_id: ada.id,
            to_user_id: grace.id,
            amount_cents: 1,
        })
        .await
        .unwrap();
    sqlx::query("UPDATE users SET balance_cents = $1 WHERE id = $2")
        .bind(i64::MAX)
        .bind(grace.id)
        .execute(database.pool())
        .await
        .unwrap();
    let too_much = database
        .transfer(Transfer {
            from_user_id: ada.id,
            to_user_id: grace.id,
            amount_cents: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(
        code(&too_much),
        "INVALID_PARAMETER",
        "{}",
        too_much.message()
    );
    assert_eq!(
        balances(&database).await,
        [(ada.id, 1_049), (grace.id, i64::MAX)],
        "a balance that would overflow changes nothing"
    );
}

#[tokio::test]
async fn migrations_run_once_from_two_processes_at_once_and_again_without_effect() {
    let Some(test_database) = TestDatabase::create().await else {
        return;
    };
    let config = DatabaseConfig::new(test_database.url()).unwrap();
    // Two providers starting together on an empty database: the advisory lock lets one apply.
    let (a, b) = tokio::join!(Database::connect(&config), Database::connect(&config));
    let (a, b) = (a.unwrap(), b.unwrap());
    let ada = a
        .create_user(new_user("Ada", "ada@example.com", 5))
        .await
        .unwrap();
    b.migrate().await.unwrap();
    let restarted = Database::connect(&config).await.unwrap();
    assert_eq!(
        restarted
            .get_user(UserId { user_id: ada.id })
            .await
            .unwrap(),
        ada
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(restarted.pool())
        .await
        .unwrap();
    assert_eq!(applied as usize, database::MIGRATOR.iter().count());
}
