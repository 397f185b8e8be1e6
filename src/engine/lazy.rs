//! A service the engine reaches on first use: etcd, the bank, Cinder, the API server. The
//! CLI hands the engine how to connect, so that a command that needs no Cinder needs no
//! credentials, and one that needs no etcd works without it; the agent hands it services
//! already connected.

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use super::EngineError;

type Init<T> = Box<dyn Fn() -> BoxFuture<'static, Result<T, EngineError>> + Send + Sync>;

/// A `T` made on first use (once; a failed attempt is tried again next time).
pub struct Lazy<T> {
    cell: OnceCell<T>,
    init: Option<Init<T>>,
}

impl<T> Lazy<T> {
    /// A `T` that is there already.
    pub fn ready(value: T) -> Self {
        Self {
            cell: OnceCell::new_with(Some(value)),
            init: None,
        }
    }

    /// A `T` that `init` makes when it is first needed.
    pub fn later<F>(init: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<T, EngineError>> + Send + Sync + 'static,
    {
        Self {
            cell: OnceCell::new(),
            init: Some(Box::new(init)),
        }
    }

    /// The `T`, made now if it was not yet.
    pub async fn get(&self) -> Result<&T, EngineError> {
        self.cell
            .get_or_try_init(|| async {
                match &self.init {
                    Some(init) => init().await,
                    None => Err(EngineError::Failed("a service was never set up".into())),
                }
            })
            .await
    }
}

impl<T> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("ready", &self.cell.initialized())
            .finish()
    }
}
