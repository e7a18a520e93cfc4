//! Cluster presence: who is online on the other nodes, so that `event.user.online` and
//! `offline` describe the whole cluster and not one node.
//!
//! A backend trait, outside the `runtime` feature; `realtime-broker-redis` implements it.

use crate::error::Result;
use crate::ids::UserId;
use crate::presence::UserStatus;
use std::collections::HashSet;
use std::time::Duration;

/// Who is present on the other nodes of a cluster (implemented by
/// `realtime-broker-redis`). With one, the Hub emits `event.user.online`/`offline` only
/// for cluster-wide changes, refreshes this node's entry every
/// [`ClusterPresence::refresh_interval`], and — on one node only, the one `others`
/// names leader — announces `offline` for the users of a node whose entry expired.
#[async_trait::async_trait]
pub trait ClusterPresence: Send + Sync + 'static {
    /// Record this node's present users (replacing its previous entry) with a TTL.
    ///
    /// # Errors
    /// Backend errors ([`Error::Broker`](crate::Error::Broker)).
    async fn refresh(&self, users: &[(UserId, UserStatus)]) -> Result<()>;
    /// Whether `user` is present on another live node.
    ///
    /// # Errors
    /// Backend errors.
    async fn online_elsewhere(&self, user: &str) -> Result<bool>;
    /// Users present on the other live nodes, and whether this node is the leader that
    /// announces the users of expired nodes.
    ///
    /// # Errors
    /// Backend errors.
    async fn others(&self) -> Result<ClusterView>;
    /// How often to call [`ClusterPresence::refresh`].
    fn refresh_interval(&self) -> Duration;
}

/// What [`ClusterPresence::others`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Users present on other live nodes.
    pub users: HashSet<UserId>,
    /// Whether this node announces the users of expired nodes.
    pub leader: bool,
}
