//! The committer: messages sent from many sessions are gathered into batches and stored
//! with one store call per batch ([`crate::Store::insert_messages`]), then published in
//! order.
//!
//! [`Hub::submit_message`] queues a job and returns a [`PendingMessage`]; the commit loop
//! gathers what is waiting (several passes, an optional linger under load), checks each
//! sender's right to post (with a short-lived membership cache, [`MayPost`]) and commits
//! the batch. Settings: [`crate::CommitConfig`].

use crate::chat::SendMessage;
use crate::error::{Error, Result};
use crate::event::EventType;
use crate::hub::Hub;
use crate::hub::Inner;
use crate::hub::lock;
use crate::ids::{RoomId, UserId, new_id, validate_id};
use crate::message::{Message, MessageKind, NewMessage, validate_client_id};
use crate::store::Inserted;
use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

/// Most entries of `Inner::may_post` before it is cleared (bounded memory).
pub(crate) const MAY_POST_MAX: usize = 100_000;

/// When each (room, user) pair was last checked as a member: room → user → time.
#[derive(Default)]
pub(crate) struct MayPost {
    pub(crate) rooms: HashMap<RoomId, HashMap<UserId, std::time::Instant>>,
    pub(crate) entries: usize,
}

impl MayPost {
    pub(crate) fn fresh(&self, room: &str, user: &str, ttl: Duration) -> bool {
        self.age(room, user).is_some_and(|age| age < ttl)
    }

    /// How long ago the pair was last checked, if it is cached.
    pub(crate) fn age(&self, room: &str, user: &str) -> Option<Duration> {
        self.rooms
            .get(room)
            .and_then(|users| users.get(user))
            .map(|t| t.elapsed())
    }

    /// Re-stamp the pair as checked now, if it is still cached (not forgotten since).
    pub(crate) fn touch(&mut self, room: &str, user: &str) {
        if let Some(t) = self
            .rooms
            .get_mut(room)
            .and_then(|users| users.get_mut(user))
        {
            *t = std::time::Instant::now();
        }
    }

    pub(crate) fn insert(&mut self, room: &str, user: &str) {
        if self.entries >= MAY_POST_MAX {
            *self = MayPost::default();
        }
        let users = self.rooms.entry(room.to_owned()).or_default();
        if users
            .insert(user.to_owned(), std::time::Instant::now())
            .is_none()
        {
            self.entries += 1;
        }
    }

    /// Forget `user` in `room`, or everyone in `room`.
    pub(crate) fn forget(&mut self, room: &str, user: Option<&str>) {
        let gone = match user {
            Some(u) => self
                .rooms
                .get_mut(room)
                .and_then(|users| users.remove(u))
                .map_or(0, |_| 1),
            None => self.rooms.remove(room).map_or(0, |users| users.len()),
        };
        self.entries -= gone;
    }
}

/// A validated send waiting for the committer.
pub(crate) struct SendJob {
    pub(crate) actor: String,
    pub(crate) req: SendMessage,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<Message>>,
}

/// A message accepted by [`Hub::submit_message`]: await it for the stored message (or
/// the reason it was refused). Sends submitted in order are stored in that order.
#[must_use = "await it for the stored message"]
pub struct PendingMessage(PendingState);

pub(crate) enum PendingState {
    Queued(tokio::sync::oneshot::Receiver<Result<Message>>),
    Done(Option<Result<Message>>),
}

impl std::fmt::Debug for PendingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingMessage")
    }
}

impl PendingMessage {
    /// A pending message settled already with `result`: for a transport that refuses a
    /// send before it reaches the Hub and queues that reply behind the sends before it.
    pub fn ready(result: Result<Message>) -> Self {
        Self(PendingState::Done(Some(result)))
    }
}

impl std::future::Future for PendingMessage {
    type Output = Result<Message>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Message>> {
        match &mut self.0 {
            PendingState::Queued(rx) => std::pin::Pin::new(rx).poll(cx).map(|r| {
                r.unwrap_or_else(|_| {
                    Err(Error::Internal("the Hub stopped before the commit".into()))
                })
            }),
            PendingState::Done(r) => std::task::Poll::Ready(
                r.take()
                    .unwrap_or_else(|| Err(Error::Internal("polled after completion".into()))),
            ),
        }
    }
}

/// The group committer: takes every queued send (lingering for more first when `linger`
/// applies: [`CommitConfig::linger`]; then up to `passes` event-loop passes:
/// [`CommitConfig::gather_passes`]), commits them as one batch, repeats.
pub(crate) async fn commit_loop(
    weak: Weak<Inner>,
    mut rx: tokio::sync::mpsc::Receiver<SendJob>,
    max: usize,
    linger: Linger,
    passes: usize,
) {
    let mut batch = Vec::with_capacity(max);
    let mut gather = Gather { passes, skip: 0 };
    while rx.recv_many(&mut batch, max).await > 0 {
        if linger.applies(batch.len(), max) {
            linger.gather(&mut rx, &mut batch, max).await;
        }
        gather.run(&mut rx, &mut batch, max).await;
        let Some(inner) = weak.upgrade() else { break };
        // Drained, not taken: the buffer keeps its capacity for the next batch.
        Hub { inner }.commit(&mut batch).await;
    }
}

/// [`CommitConfig::gather_passes`], with a brake: a pass is one trip through
/// everything the runtime has ready, and on a node with thousands of busy connections
/// (one big room's fan-out) that trip takes milliseconds. Waiting for it then delays
/// every commit for little gain — commits are rare there — so after a pass slower than
/// [`Gather::SLOW_PASS`] the next [`Gather::SKIP_AFTER_SLOW`] commits do not gather.
pub(crate) struct Gather {
    pub(crate) passes: usize,
    /// Commits left that go without gathering.
    pub(crate) skip: u32,
}

impl Gather {
    /// A pass slower than this turns gathering off for a while.
    const SLOW_PASS: Duration = Duration::from_millis(1);
    /// Commits that go without gathering after a slow pass.
    const SKIP_AFTER_SLOW: u32 = 64;

    /// Yield to the runtime (which runs what is ready, polls the sockets and runs the
    /// readers with data before it resumes this task) and take the sends submitted
    /// meanwhile; again while a pass added some, at most `passes` times, until `batch`
    /// holds `max`, or until a pass is slow.
    pub(crate) async fn run(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<SendJob>,
        batch: &mut Vec<SendJob>,
        max: usize,
    ) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        for _ in 0..self.passes {
            if batch.len() >= max {
                return;
            }
            let started = tokio::time::Instant::now();
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if started.elapsed() > Self::SLOW_PASS {
                self.skip = Self::SKIP_AFTER_SLOW;
                return;
            }
            if batch.len() == before {
                return;
            }
        }
    }
}

/// [`CommitConfig::linger`] and [`CommitConfig::linger_after`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linger {
    pub(crate) wait: Duration,
    pub(crate) after: usize,
}

impl Linger {
    /// Whether a batch of `waiting` sends (of at most `max`) lingers for more.
    pub(crate) fn applies(&self, waiting: usize, max: usize) -> bool {
        !self.wait.is_zero() && waiting >= self.after.max(1) && waiting < max
    }

    /// Add sends arriving within `wait` to `batch`, until it holds `max` or the channel
    /// closes. Sends already queued when the time is up go in the next batch.
    pub(crate) async fn gather(
        &self,
        rx: &mut tokio::sync::mpsc::Receiver<SendJob>,
        batch: &mut Vec<SendJob>,
        max: usize,
    ) {
        let deadline = tokio::time::sleep(self.wait);
        tokio::pin!(deadline);
        while batch.len() < max {
            let room = max - batch.len();
            tokio::select! {
                biased;
                () = &mut deadline => break,
                n = rx.recv_many(batch, room) => if n == 0 { break },
            }
        }
    }
}

impl Hub {
    /// `actor` sends a message (seed 000's message flow). Committed to the store at the
    /// room's next `seq` before anything is published; a retry with the same `client_id`
    /// returns the first message and publishes nothing. Stops the actor's typing.
    /// Emits `event.message.send` whose `data` is the message.
    ///
    /// # Errors
    /// [`Error::NotFound`] (room), [`Error::Forbidden`] (non-member),
    /// [`Error::ContentTooLong`], [`Error::Invalid`].
    pub async fn send_message(&self, actor: &str, req: SendMessage) -> Result<Message> {
        self.submit_message(actor, req).await?.await
    }

    /// [`Hub::send_message`] in two steps, for transports that pipeline: the request is
    /// checked for shape and queued for the group committer now (in call order), and the
    /// returned [`PendingMessage`] resolves once it is stored and published. Rights
    /// (membership, room state) are checked by the committer against the store.
    ///
    /// # Errors
    /// Now: [`Error::ContentTooLong`], [`Error::Invalid`], [`Error::Forbidden`] (SYSTEM).
    /// From the pending message: those of [`Hub::send_message`].
    pub async fn submit_message(&self, actor: &str, req: SendMessage) -> Result<PendingMessage> {
        self.inner.config.limits.check_content(&req.content)?;
        if let Some(c) = &req.client_id {
            validate_client_id(c)?;
        }
        if req.kind == MessageKind::System {
            return Err(Error::forbidden("SYSTEM messages are sent by the server"));
        }
        validate_id("room_id", &req.room_id)?;
        if let Some(tx) = &self.inner.commits {
            let (reply, rx) = tokio::sync::oneshot::channel();
            let job = SendJob {
                actor: actor.to_owned(),
                req,
                reply,
            };
            return match tx.send(job).await {
                Ok(()) => Ok(PendingMessage(PendingState::Queued(rx))),
                // The committer is gone: commit here.
                Err(e) => {
                    let SendJob { actor, req, .. } = e.0;
                    let r = self.commit_one(&actor, req).await;
                    Ok(PendingMessage(PendingState::Done(Some(r))))
                }
            };
        }
        let r = self.commit_one(actor, req).await;
        Ok(PendingMessage(PendingState::Done(Some(r))))
    }

    /// Check and store one send, without the committer (no runtime, or it is gone).
    pub(crate) async fn commit_one(&self, actor: &str, req: SendMessage) -> Result<Message> {
        self.check_post(actor, &req.room_id).await?;
        self.insert_and_publish(actor, req).await
    }

    /// Whether the sender of each of `jobs` may post in its room, in order: the
    /// membership cache first, then one [`Store::are_members`] call for every pair it does
    /// not vouch for (not a store round trip per pair: entries cached together expire
    /// together, and checking them one by one held up the committer for tens of ms).
    /// Pairs that are not memberships get their exact error from [`Hub::check_post`]
    /// (unknown room or not a member).
    pub(crate) async fn rights_to_post(&self, jobs: &[SendJob]) -> Vec<Result<()>> {
        let ttl = self.inner.config.membership_cache_ttl;
        let mut rights: HashMap<(&str, &str), Result<()>> = HashMap::with_capacity(jobs.len());
        let mut ask: Vec<(&str, &str)> = Vec::new();
        let mut renew: Vec<(String, String)> = Vec::new();
        // While a renewal runs, the pairs it would be given are not even collected.
        let renewing = self
            .inner
            .renewing
            .load(std::sync::atomic::Ordering::Acquire);
        {
            let cache = lock(&self.inner.may_post);
            for job in jobs {
                let key = (job.req.room_id.as_str(), job.actor.as_str());
                if rights.contains_key(&key) {
                    continue;
                }
                match cache.age(key.0, key.1) {
                    Some(age) if !ttl.is_zero() && age < ttl => {
                        rights.insert(key, Ok(()));
                        if !renewing && age >= ttl / 2 {
                            renew.push((key.0.to_owned(), key.1.to_owned()));
                        }
                    }
                    _ => {
                        // Answered by `ask_rights`, which sets every pair it is given.
                        rights.insert(key, Err(Error::Internal("membership not checked".into())));
                        ask.push(key);
                    }
                }
            }
        }
        if !renew.is_empty() {
            self.renew_rights(renew);
        }
        if !ask.is_empty() {
            self.ask_rights(ask, ttl, &mut rights).await;
        }
        jobs.iter()
            .map(|job| {
                let key = (job.req.room_id.as_str(), job.actor.as_str());
                rights
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| Err(Error::Internal("membership not checked".into())))
            })
            .collect()
    }

    /// Renew cached memberships past half their time to live, in a background task (one
    /// at a time; none without a runtime): one [`Store::are_members`] call, then each pair
    /// still a member and still cached (not forgotten meanwhile, by a leave this node saw)
    /// is stamped as checked now, and each that is not is forgotten. So a sender who keeps
    /// posting is never held up by the store: the committer waits for `are_members` only
    /// for pairs not cached or expired, and under load every wait is a pass of the
    /// runtime's run queue. The guarantee is unchanged: a pair
    /// is trusted at most [`HubConfig::membership_cache_ttl`] after the store last said so.
    pub(crate) fn renew_rights(&self, pairs: Vec<(String, String)>) {
        use std::sync::atomic::Ordering;
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let hub = self.clone();
        rt.spawn(async move {
            let asked: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(r, u)| (r.as_str(), u.as_str()))
                .collect();
            match hub.inner.store.are_members(&asked).await {
                Ok(members) if members.len() == asked.len() => {
                    let mut cache = lock(&hub.inner.may_post);
                    for ((room, user), member) in asked.into_iter().zip(members) {
                        if member {
                            cache.touch(room, user);
                        } else {
                            cache.forget(room, Some(user));
                        }
                    }
                }
                // Left to expire: the committer asks for them then.
                Ok(_) => tracing::debug!("membership renewal answered the wrong number of pairs"),
                Err(e) => tracing::debug!(error = %e, "membership renewal failed"),
            }
            hub.inner.renewing.store(false, Ordering::Release);
        });
    }

    /// [`Hub::rights_to_post`]'s store part: one [`Store::are_members`] call for `ask`.
    pub(crate) async fn ask_rights<'a>(
        &self,
        ask: Vec<(&'a str, &'a str)>,
        ttl: Duration,
        rights: &mut HashMap<(&'a str, &'a str), Result<()>>,
    ) {
        let members = match self.inner.store.are_members(&ask).await {
            Ok(m) if m.len() == ask.len() => m,
            // Unanswered: each pair on its own below.
            _ => vec![false; ask.len()],
        };
        for (key, member) in ask.into_iter().zip(members) {
            let right = if member {
                if !ttl.is_zero() {
                    lock(&self.inner.may_post).insert(key.0, key.1);
                }
                Ok(())
            } else {
                self.check_post(key.1, key.0).await
            };
            rights.insert(key, right);
        }
    }

    pub(crate) async fn check_post(&self, actor: &str, room_id: &str) -> Result<()> {
        let ttl = self.inner.config.membership_cache_ttl;
        if !ttl.is_zero() && lock(&self.inner.may_post).fresh(room_id, actor, ttl) {
            return Ok(());
        }
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_post(member.as_ref())?;
        if !ttl.is_zero() {
            lock(&self.inner.may_post).insert(room_id, actor);
        }
        Ok(())
    }

    /// Commit queued sends: rights checked once per (room, sender), one store transaction
    /// for all (one by one if the batch fails, so one bad send cannot sink the others),
    /// then publish and reply in order.
    pub(crate) async fn commit(&self, jobs: &mut Vec<SendJob>) {
        let rights = self.rights_to_post(jobs).await;
        let mut accepted = Vec::with_capacity(jobs.len());
        let mut batch = Vec::with_capacity(jobs.len());
        for (job, right) in jobs.drain(..).zip(rights) {
            if let Err(e) = right {
                let _ = job.reply.send(Err(e));
                continue;
            }
            batch.push(self.new_message(&job));
            accepted.push(job);
        }
        let store = &self.inner.store;
        let started = std::time::Instant::now();
        let results: Vec<Result<Inserted>> = match batch.len() {
            0 => return,
            1 => vec![store.insert_message(batch.remove(0)).await],
            _ => match store.insert_messages(batch).await {
                Ok(v) => v.into_iter().map(Ok).collect(),
                Err(e) => {
                    // Nothing of the batch was stored; each again from its request.
                    tracing::debug!(error = %e, "batch commit failed; committing one by one");
                    let mut v = Vec::with_capacity(accepted.len());
                    for job in &accepted {
                        v.push(store.insert_message(self.new_message(job)).await);
                    }
                    v
                }
            },
        };
        let stored = results.iter().filter(|r| r.is_ok()).count();
        self.inner
            .metrics
            .record_commit(stored as u64, started.elapsed());
        for (job, r) in accepted.into_iter().zip(results) {
            let r = match r {
                Ok(inserted) => {
                    self.publish_inserted(&job.actor, &inserted).await;
                    Ok(inserted.message)
                }
                Err(e) => Err(e),
            };
            let _ = job.reply.send(r);
        }
    }

    pub(crate) fn new_message(&self, job: &SendJob) -> NewMessage {
        NewMessage {
            id: new_id(),
            room_id: job.req.room_id.clone(),
            sender_id: job.actor.clone(),
            client_id: job.req.client_id.clone(),
            content: job.req.content.clone(),
            kind: job.req.kind,
            created_at: self.now(),
        }
    }

    pub(crate) async fn publish_inserted(&self, actor: &str, inserted: &Inserted) {
        if !inserted.created {
            return;
        }
        let m = &inserted.message;
        let now = self.now();
        let mut events = lock(&self.inner.typing).message_sent(&m.room_id, actor, now);
        let mut ev = m.event(EventType::MESSAGE_SEND, actor, now);
        ev.timestamp = m.created_at;
        events.insert(0, ev);
        self.emit(events).await;
    }

    pub(crate) async fn insert_and_publish(
        &self,
        actor: &str,
        req: SendMessage,
    ) -> Result<Message> {
        let now = self.now();
        let inserted = self
            .inner
            .store
            .insert_message(NewMessage {
                id: new_id(),
                room_id: req.room_id.clone(),
                sender_id: actor.to_owned(),
                client_id: req.client_id,
                content: req.content,
                kind: req.kind,
                created_at: now,
            })
            .await?;
        self.publish_inserted(actor, &inserted).await;
        Ok(inserted.message)
    }
}
