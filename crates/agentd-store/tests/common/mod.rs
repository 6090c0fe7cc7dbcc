//! What the store's test files share: running one case on both backends.

/// Turns `case_name, |store| { ... }` into a module `case_name` with one test
/// per backend; the body gets `store: &TestStore` (which derefs to `Store`)
/// and returns `anyhow::Result<()>`.
macro_rules! on_both_backends {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn case($store: &TestStore) -> anyhow::Result<()> $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                case(&TestStore::new(Backend::Sqlite).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                case(&TestStore::new(Backend::Postgres).await).await
            }
        }
    };
}

/// Asserts that `$result` is an `Err` matching `$pattern`.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected Err({}), got {other:?}", stringify!($pattern)),
        }
    };
}
