//! The `Store` implementation, written once and expanded for each backend.
//!
//! Every statement is plain SQL with `$N` parameters, which both SQLite and PostgreSQL
//! accept, and runtime queries (`sqlx::query` + `Row::try_get`), never the `query!`
//! macros (they would read the host application's `DATABASE_URL` at build time).

mod convert;

pub(crate) use convert::{
    batch_bucket, db_err, from_micros, id_list_query, micros, opt_micros, store_err, to_i64, to_u64,
};

/// Expands to `impl Store for $store` where `$store` has `pool: sqlx::Pool<$db>`, an
/// inherent `async fn writer(&self) -> Result<C>` that waits for the connection every
/// write runs on, transactions and single statements (`C: DerefMut<Target = $db's
/// connection>`), an inherent
/// `async fn begin_on(conn) -> Result<Transaction<'_, $db>>` that opens a transaction
/// on it able to write without upgrade deadlocks, and an inherent
/// `async fn lock_counters(&self, tx, rooms: &[String]) -> Result<Vec<(String, i64)>>`
/// that locks the rooms' `last_seq` counters for the transaction and reads them, and an
/// inherent `async fn insert_batch_one_trip(&self, batch) -> Result<Result<Vec<Inserted>,
/// Vec<NewMessage>>>`: the batch in one query where the database can (`Err(batch)`: take
/// the exact path), and an inherent `fn forget_seqs(&self, rooms: impl IntoIterator<Item =
/// &str>)`, called holding the writing connection after a write outside that one query
/// moved or removed the rooms' numbers (SQLite's seq cache; a no-op on PostgreSQL).
/// The invoking module also defines `const MULTI_STATEMENT: bool`: whether one query may
/// hold several `;`-separated statements (SQLite through sqlx: yes; PostgreSQL: no), and
/// `const STABLE_BATCH_TEXT: bool`: whether batch inserts are padded to [`batch_bucket`]
/// sizes and room ids passed as JSON, so that their statement texts repeat (SQLite: yes), `const SEQ_FROM_MESSAGES: bool`: whether a room's last `seq` is read from
/// its messages instead of kept in `realtime_rooms.last_seq` (SQLite: yes), and the texts
/// `NEXT_SEQ` (take room `$1`'s next `seq`: one row with `last_seq`, none for an unknown
/// room) and `LATEST_SEQ` (room `$1`'s last `seq`: at most one row with `last_seq`).
macro_rules! impl_store {
    ($store:ty, $db:ty, $row:ty) => {
        /// `INSERT INTO realtime_messages … VALUES …` for `rows` (≤ 500: 11 parameters a row
        /// stay under SQLite's 32,766-parameter limit), skipping rows whose client id exists.
        /// The nine bound columns of one message row in a batch insert's `VALUES` list
        /// (`seq`: the sequence number, or the row's place in its room for the one-query
        /// insert, which adds the counter in SQL).
        struct RowBinds<'m> {
            message: &'m str,
            room: &'m str,
            seq: i64,
            client_id: Option<&'m str>,
            sender: &'m str,
            content: &'m str,
            kind: &'static str,
            status: &'static str,
            created_at: i64,
        }

        /// `VALUES (…), …` of `rows` (≤ 500), padded with all-NULL rows to a
        /// [`crate::sql::batch_bucket`] size: one statement text per bucket, so it stays
        /// prepared in sqlx's cache. The caller wraps it in `SELECT … FROM (…) WHERE column1
        /// IS NOT NULL`, which drops the padding.
        fn push_padded_rows<'m>(qb: &mut sqlx::QueryBuilder<$db>, rows: impl ExactSizeIterator<Item = RowBinds<'m>>) {
            let padding = crate::sql::batch_bucket(rows.len()) - rows.len();
            qb.push_values(rows.map(Some).chain(std::iter::repeat_with(|| None).take(padding)), |mut b, row| match row {
                Some(r) => {
                    b.push_bind(r.message.to_owned())
                        .push_bind(r.room.to_owned())
                        .push_bind(r.seq)
                        .push_bind(r.client_id.map(str::to_owned))
                        .push_bind(r.sender.to_owned())
                        .push_bind(r.content.as_bytes().to_vec())
                        .push_bind(r.kind)
                        .push_bind(r.status)
                        .push_bind(r.created_at);
                }
                None => {
                    b.push_bind(None::<String>)
                        .push_bind(None::<String>)
                        .push_bind(None::<i64>)
                        .push_bind(None::<String>)
                        .push_bind(None::<String>)
                        .push_bind(None::<Vec<u8>>)
                        .push_bind(None::<String>)
                        .push_bind(None::<String>)
                        .push_bind(None::<i64>);
                }
            });
        }

        fn push_insert(qb: &mut sqlx::QueryBuilder<$db>, rows: &[realtime_core::Message]) {
            use crate::sql::micros;
            qb.push("INSERT INTO realtime_messages (id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at) ");
            if STABLE_BATCH_TEXT {
                qb.push("SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9, NULL, NULL FROM (");
                push_padded_rows(qb, rows.iter().map(|m| RowBinds {
                    message: m.id.as_str(),
                    room: m.room_id.as_str(),
                    seq: crate::sql::to_i64(m.seq),
                    client_id: m.client_id.as_deref(),
                    sender: m.sender_id.as_str(),
                    content: m.content.as_str(),
                    kind: m.kind.as_str(),
                    status: m.status.as_str(),
                    created_at: micros(m.created_at),
                }));
                // (The `WHERE` also settles the parse: an upsert after `INSERT … SELECT`
                // needs one.)
                qb.push(") WHERE column1 IS NOT NULL");
            } else {
                qb.push_values(rows, |mut b, m| {
                    b.push_bind(m.id.clone())
                        .push_bind(m.room_id.clone())
                        .push_bind(crate::sql::to_i64(m.seq))
                        .push_bind(m.client_id.clone())
                        .push_bind(m.sender_id.clone())
                        .push_bind(m.content.as_bytes().to_vec())
                        .push_bind(m.kind.as_str())
                        .push_bind(m.status.as_str())
                        .push_bind(micros(m.created_at))
                        .push_bind(None::<i64>)
                        .push_bind(None::<i64>);
                });
            }
            qb.push(" ON CONFLICT (room_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING");
        }

        /// Set `last_seq` of each room in `moved` (≤ 500): one `UPDATE … CASE id WHEN … END`.
        /// Only where the counters are kept (`SEQ_FROM_MESSAGES` false: PostgreSQL).
        fn push_counters(qb: &mut sqlx::QueryBuilder<$db>, moved: &[(&String, i64)]) -> realtime_core::Result<()> {
            qb.push("UPDATE realtime_rooms SET last_seq = CASE id");
            for (room, seq) in moved {
                qb.push(" WHEN ").push_bind((*room).clone()).push(" THEN ").push_bind(*seq);
            }
            qb.push(" ELSE last_seq END WHERE id IN (");
            let mut ids = qb.separated(", ");
            for (room, _) in moved {
                ids.push_bind((*room).clone());
            }
            qb.push(")");
            Ok(())
        }

        mod rows {
            use super::*;
            use crate::sql::{from_micros, opt_micros, to_u64};
            use realtime_core::{Error, Result};
            use realtime_core::{Invite, InviteState, Member, Message, MessageKind, MessageStatus, Reaction, Role, Room, RoomKind, User, UserStatus};
            use realtime_core::{Favorite, FavoriteKind, Event};
            use sqlx::Row;

            fn get<'r, T: sqlx::Decode<'r, $db> + sqlx::Type<$db>>(r: &'r $row, col: &str) -> Result<T> {
                r.try_get(col).map_err(crate::sql::store_err)
            }

            pub(crate) fn user(r: &$row) -> Result<User> {
                Ok(User {
                    id: get(r, "id")?,
                    username: get(r, "username")?,
                    display_name: get(r, "display_name")?,
                    email: get(r, "email")?,
                    avatar: get(r, "avatar")?,
                    status: UserStatus::parse(&get::<String>(r, "status")?)?,
                    last_seen: opt_micros(get(r, "last_seen")?)?,
                    created_at: from_micros(get(r, "created_at")?)?,
                    updated_at: from_micros(get(r, "updated_at")?)?,
                    password_hash: get(r, "password_hash")?,
                })
            }

            pub(crate) fn room(r: &$row) -> Result<Room> {
                Ok(Room {
                    id: get(r, "id")?,
                    name: get(r, "name")?,
                    kind: RoomKind::parse(&get::<String>(r, "kind")?)?,
                    description: get(r, "description")?,
                    is_private: get::<i64>(r, "is_private")? != 0,
                    created_by: get(r, "created_by")?,
                    created_at: from_micros(get(r, "created_at")?)?,
                    updated_at: from_micros(get(r, "updated_at")?)?,
                    epoch: get(r, "epoch")?,
                })
            }

            pub(crate) fn member(r: &$row) -> Result<Member> {
                Ok(Member {
                    room_id: get(r, "room_id")?,
                    user_id: get(r, "user_id")?,
                    role: Role::parse(&get::<String>(r, "role")?)?,
                    joined_at: from_micros(get(r, "joined_at")?)?,
                })
            }

            pub(crate) fn invite(r: &$row) -> Result<Invite> {
                Ok(Invite {
                    code: get(r, "code")?,
                    room_id: get(r, "room_id")?,
                    created_by: get(r, "created_by")?,
                    invitee: get(r, "invitee")?,
                    created_at: from_micros(get(r, "created_at")?)?,
                    expires_at: from_micros(get(r, "expires_at")?)?,
                    state: InviteState::parse(&get::<String>(r, "state")?)?,
                    responded_by: get(r, "responded_by")?,
                    responded_at: opt_micros(get(r, "responded_at")?)?,
                })
            }

            pub(crate) fn message(r: &$row) -> Result<Message> {
                let content: Vec<u8> = get(r, "content")?;
                Ok(Message {
                    id: get(r, "id")?,
                    room_id: get(r, "room_id")?,
                    seq: to_u64(get(r, "seq")?),
                    client_id: get(r, "client_id")?,
                    sender_id: get(r, "sender_id")?,
                    content: String::from_utf8(content).map_err(|e| Error::Store(format!("message content is not UTF-8: {e}").into()))?,
                    kind: MessageKind::parse(&get::<String>(r, "kind")?)?,
                    status: MessageStatus::parse(&get::<String>(r, "status")?)?,
                    created_at: from_micros(get(r, "created_at")?)?,
                    edited_at: opt_micros(get(r, "edited_at")?)?,
                    deleted_at: opt_micros(get(r, "deleted_at")?)?,
                })
            }

            pub(crate) fn reaction(r: &$row) -> Result<Reaction> {
                Ok(Reaction {
                    message_id: get(r, "message_id")?,
                    user_id: get(r, "user_id")?,
                    emoji: get(r, "emoji")?,
                    created_at: from_micros(get(r, "created_at")?)?,
                })
            }

            pub(crate) fn favorite(r: &$row) -> Result<Favorite> {
                let kind = match get::<String>(r, "kind")?.as_str() {
                    "ROOM" => FavoriteKind::Room,
                    "USER" => FavoriteKind::User,
                    other => return Err(Error::Store(format!("unknown favorite kind {other}").into())),
                };
                Ok(Favorite {
                    user_id: get(r, "user_id")?,
                    target_id: get(r, "target_id")?,
                    kind,
                    created_at: from_micros(get(r, "created_at")?)?,
                })
            }

            pub(crate) fn event(r: &$row) -> Result<Event> {
                let body: String = get(r, "body")?;
                Event::from_json_bytes(body.as_bytes())
            }
        }

        #[async_trait::async_trait]
        impl realtime_core::Store for $store {
            async fn create_user(&self, u: &realtime_core::User) -> realtime_core::Result<()> {
                use crate::sql::{db_err, micros};
                sqlx::query("INSERT INTO realtime_users (id, username, display_name, email, avatar, status, last_seen, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(&u.id).bind(&u.username).bind(&u.display_name).bind(&u.email).bind(&u.avatar)
                    .bind(u.status.as_str()).bind(u.last_seen.map(micros)).bind(&u.password_hash)
                    .bind(micros(u.created_at)).bind(micros(u.updated_at))
                    .execute(&mut *self.writer().await?).await
                    .map_err(|e| db_err(e, "user", &u.id, "user", &u.id))?;
                Ok(())
            }

            async fn get_user(&self, id: &str) -> realtime_core::Result<Option<realtime_core::User>> {
                let row = sqlx::query(USER_BY_ID).bind(id).fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                row.as_ref().map(rows::user).transpose()
            }

            async fn get_user_by_username(&self, username: &str) -> realtime_core::Result<Option<realtime_core::User>> {
                let row = sqlx::query(USER_BY_USERNAME).bind(username).fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                row.as_ref().map(rows::user).transpose()
            }

            async fn update_user(&self, u: &realtime_core::User) -> realtime_core::Result<()> {
                use crate::sql::{db_err, micros};
                let r = sqlx::query("UPDATE realtime_users SET username = $2, display_name = $3, email = $4, avatar = $5, status = $6, last_seen = $7, password_hash = $8, updated_at = $9 WHERE id = $1")
                    .bind(&u.id).bind(&u.username).bind(&u.display_name).bind(&u.email).bind(&u.avatar)
                    .bind(u.status.as_str()).bind(u.last_seen.map(micros)).bind(&u.password_hash).bind(micros(u.updated_at))
                    .execute(&mut *self.writer().await?).await
                    .map_err(|e| db_err(e, "user", &u.username, "user", &u.id))?;
                if r.rows_affected() == 0 {
                    return Err(realtime_core::Error::NotFound { kind: "user", id: u.id.clone() });
                }
                Ok(())
            }

            async fn delete_user(&self, id: &str) -> realtime_core::Result<bool> {
                let r = sqlx::query("DELETE FROM realtime_users WHERE id = $1").bind(id).execute(&mut *self.writer().await?).await.map_err(crate::sql::store_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_users(&self, offset: u32, limit: u32) -> realtime_core::Result<Vec<realtime_core::User>> {
                let rows = sqlx::query("SELECT id, username, display_name, email, avatar, status, last_seen, password_hash, created_at, updated_at FROM realtime_users ORDER BY id LIMIT $1 OFFSET $2")
                    .bind(i64::from(limit)).bind(i64::from(offset))
                    .fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                rows.iter().map(rows::user).collect()
            }

            async fn set_user_status(&self, id: &str, status: realtime_core::UserStatus, last_seen: realtime_core::Timestamp) -> realtime_core::Result<()> {
                let r = sqlx::query("UPDATE realtime_users SET status = $2, last_seen = $3 WHERE id = $1")
                    .bind(id).bind(status.as_str()).bind(crate::sql::micros(last_seen))
                    .execute(&mut *self.writer().await?).await.map_err(crate::sql::store_err)?;
                if r.rows_affected() == 0 {
                    return Err(realtime_core::Error::NotFound { kind: "user", id: id.to_owned() });
                }
                Ok(())
            }

            async fn create_room(&self, room: &realtime_core::Room, members: &[realtime_core::Member]) -> realtime_core::Result<()> {
                use crate::sql::{db_err, micros, store_err};
                let mut conn = self.writer().await?;
                let mut tx = Self::begin_on(&mut conn).await?;
                sqlx::query("INSERT INTO realtime_rooms (id, name, kind, description, is_private, created_by, created_at, updated_at, epoch, last_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)")
                    .bind(&room.id).bind(&room.name).bind(room.kind.as_str()).bind(&room.description)
                    .bind(i64::from(room.is_private)).bind(&room.created_by)
                    .bind(micros(room.created_at)).bind(micros(room.updated_at)).bind(&room.epoch)
                    .execute(&mut *tx).await
                    .map_err(|e| db_err(e, "room", &room.id, "room", &room.id))?;
                for m in members {
                    sqlx::query("INSERT INTO realtime_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)")
                        .bind(&m.room_id).bind(&m.user_id).bind(m.role.as_str()).bind(micros(m.joined_at))
                        .execute(&mut *tx).await
                        .map_err(|e| db_err(e, "member", &m.user_id, "room", &m.room_id))?;
                }
                tx.commit().await.map_err(store_err)
            }

            async fn get_room(&self, id: &str) -> realtime_core::Result<Option<realtime_core::Room>> {
                let row = sqlx::query("SELECT * FROM realtime_rooms WHERE id = $1").bind(id).fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                row.as_ref().map(rows::room).transpose()
            }

            async fn update_room(&self, room: &realtime_core::Room) -> realtime_core::Result<()> {
                use crate::sql::micros;
                let r = sqlx::query("UPDATE realtime_rooms SET name = $2, kind = $3, description = $4, is_private = $5, updated_at = $6, epoch = $7 WHERE id = $1")
                    .bind(&room.id).bind(&room.name).bind(room.kind.as_str()).bind(&room.description)
                    .bind(i64::from(room.is_private)).bind(micros(room.updated_at)).bind(&room.epoch)
                    .execute(&mut *self.writer().await?).await.map_err(crate::sql::store_err)?;
                if r.rows_affected() == 0 {
                    return Err(realtime_core::Error::NotFound { kind: "room", id: room.id.clone() });
                }
                Ok(())
            }

            async fn delete_room(&self, id: &str) -> realtime_core::Result<bool> {
                use crate::sql::store_err;
                let mut conn = self.writer().await?;
                let mut tx = Self::begin_on(&mut conn).await?;
                sqlx::query("DELETE FROM realtime_favorites WHERE kind = 'ROOM' AND target_id = $1").bind(id).execute(&mut *tx).await.map_err(store_err)?;
                let r = sqlx::query("DELETE FROM realtime_rooms WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(store_err)?;
                tx.commit().await.map_err(store_err)?;
                // Its messages are gone: a room made again under this id numbers from 1.
                self.forget_seqs([id]);
                Ok(r.rows_affected() > 0)
            }

            async fn list_rooms(&self, member_of: Option<&str>, offset: u32, limit: u32) -> realtime_core::Result<Vec<realtime_core::Room>> {
                let q = match member_of {
                    Some(u) => sqlx::query("SELECT r.* FROM realtime_rooms r JOIN realtime_members m ON m.room_id = r.id WHERE m.user_id = $3 ORDER BY r.id LIMIT $1 OFFSET $2")
                        .bind(i64::from(limit)).bind(i64::from(offset)).bind(u.to_owned()),
                    None => sqlx::query("SELECT * FROM realtime_rooms ORDER BY id LIMIT $1 OFFSET $2")
                        .bind(i64::from(limit)).bind(i64::from(offset)),
                };
                let rows = q.fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                rows.iter().map(rows::room).collect()
            }

            async fn add_member(&self, m: &realtime_core::Member) -> realtime_core::Result<()> {
                sqlx::query("INSERT INTO realtime_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)")
                    .bind(&m.room_id).bind(&m.user_id).bind(m.role.as_str()).bind(crate::sql::micros(m.joined_at))
                    .execute(&mut *self.writer().await?).await
                    .map_err(|e| crate::sql::db_err(e, "member", &m.user_id, "room", &m.room_id))?;
                Ok(())
            }

            async fn get_member(&self, room_id: &str, user_id: &str) -> realtime_core::Result<Option<realtime_core::Member>> {
                let row = sqlx::query("SELECT * FROM realtime_members WHERE room_id = $1 AND user_id = $2")
                    .bind(room_id).bind(user_id).fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                row.as_ref().map(rows::member).transpose()
            }

            async fn are_members(&self, pairs: &[(&str, &str)]) -> realtime_core::Result<Vec<bool>> {
                use sqlx::Row;
                // One query per 500 pairs: the pairs as a `VALUES` list joined to the primary
                // key (an index search per pair, not a scan); the members found come back.
                let mut found: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
                for chunk in pairs.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT m.room_id, m.user_id FROM (");
                    qb.push_values(chunk, |mut b, (room, user)| {
                        b.push_bind(room.to_string()).push_bind(user.to_string());
                    });
                    qb.push(") AS v JOIN realtime_members m ON m.room_id = v.column1 AND m.user_id = v.column2");
                    for row in qb.build().fetch_all(&self.pool).await.map_err(crate::sql::store_err)? {
                        let room: String = row.try_get("room_id").map_err(crate::sql::store_err)?;
                        let user: String = row.try_get("user_id").map_err(crate::sql::store_err)?;
                        found.insert((room, user));
                    }
                }
                Ok(pairs.iter().map(|(r, u)| found.contains(&((*r).to_owned(), (*u).to_owned()))).collect())
            }

            async fn remove_member(&self, room_id: &str, user_id: &str) -> realtime_core::Result<bool> {
                let r = sqlx::query("DELETE FROM realtime_members WHERE room_id = $1 AND user_id = $2")
                    .bind(room_id).bind(user_id).execute(&mut *self.writer().await?).await.map_err(crate::sql::store_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_members(&self, room_id: &str) -> realtime_core::Result<Vec<realtime_core::Member>> {
                let rows = sqlx::query("SELECT * FROM realtime_members WHERE room_id = $1 ORDER BY joined_at, user_id")
                    .bind(room_id).fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                rows.iter().map(rows::member).collect()
            }

            async fn count_members(&self, room_id: &str) -> realtime_core::Result<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM realtime_members WHERE room_id = $1")
                    .bind(room_id).fetch_one(&self.pool).await.map_err(crate::sql::store_err)?;
                Ok(n.max(0) as u64)
            }

            async fn count_members_up_to(&self, room_id: &str, limit: u64) -> realtime_core::Result<u64> {
                // Reads at most `limit` entries of the (room_id, user_id) key.
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM realtime_members WHERE room_id = $1 LIMIT $2) AS capped")
                    .bind(room_id).bind(crate::sql::to_i64(limit)).fetch_one(&self.pool).await.map_err(crate::sql::store_err)?;
                Ok(n.max(0) as u64)
            }

            async fn create_invite(&self, i: &realtime_core::Invite) -> realtime_core::Result<()> {
                use crate::sql::micros;
                sqlx::query("INSERT INTO realtime_invites (code, room_id, created_by, invitee, created_at, expires_at, state, responded_by, responded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    .bind(&i.code).bind(&i.room_id).bind(&i.created_by).bind(&i.invitee)
                    .bind(micros(i.created_at)).bind(micros(i.expires_at)).bind(i.state.as_str())
                    .bind(&i.responded_by).bind(i.responded_at.map(micros))
                    .execute(&mut *self.writer().await?).await
                    .map_err(|e| crate::sql::db_err(e, "invite", &i.code, "room", &i.room_id))?;
                Ok(())
            }

            async fn get_invite(&self, code: &str) -> realtime_core::Result<Option<realtime_core::Invite>> {
                let row = sqlx::query("SELECT * FROM realtime_invites WHERE code = $1").bind(code).fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                row.as_ref().map(rows::invite).transpose()
            }

            async fn answer_invite(&self, i: &realtime_core::Invite, member: Option<&realtime_core::Member>) -> realtime_core::Result<()> {
                use crate::sql::{db_err, micros, store_err};
                let mut conn = self.writer().await?;
                let mut tx = Self::begin_on(&mut conn).await?;
                let r = sqlx::query("UPDATE realtime_invites SET state = $2, responded_by = $3, responded_at = $4 WHERE code = $1 AND state = 'pending'")
                    .bind(&i.code).bind(i.state.as_str()).bind(&i.responded_by).bind(i.responded_at.map(micros))
                    .execute(&mut *tx).await.map_err(store_err)?;
                if r.rows_affected() == 0 {
                    let exists = sqlx::query("SELECT code FROM realtime_invites WHERE code = $1").bind(&i.code).fetch_optional(&mut *tx).await.map_err(store_err)?;
                    return Err(match exists {
                        Some(_) => realtime_core::Error::Conflict { kind: "invite", id: i.code.clone() },
                        None => realtime_core::Error::NotFound { kind: "invite", id: i.code.clone() },
                    });
                }
                if let Some(m) = member {
                    sqlx::query("INSERT INTO realtime_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)")
                        .bind(&m.room_id).bind(&m.user_id).bind(m.role.as_str()).bind(micros(m.joined_at))
                        .execute(&mut *tx).await
                        .map_err(|e| db_err(e, "member", &m.user_id, "room", &m.room_id))?;
                }
                tx.commit().await.map_err(store_err)
            }

            async fn insert_message(&self, new: realtime_core::NewMessage) -> realtime_core::Result<realtime_core::Inserted> {
                use crate::sql::{db_err, micros, store_err, to_u64};
                use sqlx::Row;
                // SQLite: as a batch of one in one query (one hand-off to its thread instead of
                // four; W2 1 msg/s, −5 % CPU in 5 of 6 pairs); a
                // stored client id or an unknown room gives it back for the steps below.
                let new = if MULTI_STATEMENT && STABLE_BATCH_TEXT {
                    match self.insert_batch_one_trip(vec![new]).await? {
                        Ok(mut out) => return Ok(out.remove(0)),
                        Err(mut back) => back.remove(0),
                    }
                } else {
                    new
                };
                let mut conn = self.writer().await?;
                let mut tx = Self::begin_on(&mut conn).await?;
                // Taking the room's counter locks the room row (PostgreSQL) or the database
                // (SQLite, BEGIN IMMEDIATE): inserts into one room are serialized, and a
                // rollback gives the number back, so seq stays gapless.
                let row = sqlx::query(NEXT_SEQ)
                    .bind(&new.room_id).fetch_optional(&mut *tx).await.map_err(store_err)?;
                let Some(row) = row else {
                    return Err(realtime_core::Error::NotFound { kind: "room", id: new.room_id.clone() });
                };
                let seq: i64 = row.try_get("last_seq").map_err(store_err)?;
                // Insert without looking the client id up first (one hand-off less); a
                // skipped row means the client id exists: give the number back, return that.
                let done = sqlx::query("INSERT INTO realtime_messages (id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL) ON CONFLICT (room_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING")
                    .bind(&new.id).bind(&new.room_id).bind(seq).bind(&new.client_id).bind(&new.sender_id)
                    .bind(new.content.as_bytes()).bind(new.kind.as_str()).bind(realtime_core::MessageStatus::Sent.as_str())
                    .bind(micros(new.created_at))
                    .execute(&mut *tx).await
                    .map_err(|e| db_err(e, "message", &new.id, "room", &new.room_id))?;
                if done.rows_affected() == 0 {
                    tx.rollback().await.map_err(store_err)?;
                    // Hand the writing connection back first: in memory it is the pool's only one.
                    drop(conn);
                    let existing = sqlx::query(MSG_BY_CLIENT_ID)
                        .bind(&new.room_id).bind(&new.sender_id).bind(&new.client_id)
                        .fetch_optional(&self.pool).await.map_err(store_err)?;
                    return match existing {
                        Some(row) => Ok(realtime_core::Inserted { message: rows::message(&row)?, created: false }),
                        None => Err(realtime_core::Error::Store("a message with this client id was inserted and removed concurrently".into())),
                    };
                }
                tx.commit().await.map_err(store_err)?;
                Ok(realtime_core::Inserted { message: realtime_core::Message::from_new(new, to_u64(seq)), created: true })
            }

            async fn insert_messages(&self, batch: Vec<realtime_core::NewMessage>) -> realtime_core::Result<Vec<realtime_core::Inserted>> {
                use crate::sql::{db_err, store_err, to_u64};
                use realtime_core::{Inserted, Message};
                use std::collections::HashMap;
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                // SQLite: the whole batch in one query, when it goes through as it is.
                let one_trip = MULTI_STATEMENT && STABLE_BATCH_TEXT && batch.len() <= 500;
                let batch = if one_trip {
                    match self.insert_batch_one_trip(batch).await? {
                        Ok(out) => return Ok(out),
                        Err(batch) => batch,
                    }
                } else {
                    batch
                };
                // First optimistically, without looking client ids up: the insert skips rows
                // whose client id exists. If none was skipped, done in a few round trips;
                // otherwise roll back and redo it exactly, looking each client id up (at once
                // when the one-query path above already went back).
                for optimistic in [true, false].into_iter().skip(usize::from(one_trip)) {
                    let mut conn = self.writer().await?;
                let mut tx = Self::begin_on(&mut conn).await?;
                    // Lock and read every room's counter (one statement and one result row
                    // per 500 rooms, see `lock_counters`), in primary-key order, the same for
                    // every batch, so batches cannot deadlock.
                    let mut rooms: Vec<String> = batch.iter().map(|m| m.room_id.clone()).collect();
                    rooms.sort();
                    rooms.dedup();
                    let mut last: HashMap<String, (i64, i64)> = HashMap::new();
                    for chunk in rooms.chunks(500) {
                        for (id, seq) in self.lock_counters(&mut tx, chunk).await? {
                            last.insert(id, (seq, seq));
                        }
                    }
                    if let Some(r) = rooms.iter().find(|r| !last.contains_key(*r)) {
                        return Err(realtime_core::Error::NotFound { kind: "room", id: r.clone() });
                    }
                    let mut out: Vec<Inserted> = Vec::with_capacity(batch.len());
                    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
                    let mut fresh: Vec<Message> = Vec::new();
                    for new in &batch {
                        if let Some(cid) = &new.client_id {
                            let key = (new.room_id.clone(), new.sender_id.clone(), cid.clone());
                            if let Some(&i) = seen.get(&key) {
                                let message = out[i].message.clone();
                                out.push(Inserted { message, created: false });
                                continue;
                            }
                            seen.insert(key, out.len());
                            if !optimistic {
                                let existing = sqlx::query(MSG_BY_CLIENT_ID)
                                    .bind(&new.room_id).bind(&new.sender_id).bind(cid)
                                    .fetch_optional(&mut *tx).await.map_err(store_err)?;
                                if let Some(row) = existing {
                                    out.push(Inserted { message: rows::message(&row)?, created: false });
                                    continue;
                                }
                            }
                        }
                        let counter = last.get_mut(&new.room_id).ok_or_else(|| realtime_core::Error::Internal("room not locked".into()))?;
                        counter.1 += 1;
                        let message = Message::from_new(new.clone(), to_u64(counter.1));
                        fresh.push(message.clone());
                        out.push(Inserted { message, created: true });
                    }
                    // Every moved counter: `CASE id WHEN … THEN … END`, 500 rooms a statement
                    // (none where the counters are the messages themselves).
                    let moved: Vec<(&String, i64)> = if SEQ_FROM_MESSAGES {
                        Vec::new()
                    } else {
                        last.iter().filter(|(_, (b, a))| a != b).map(|(r, (_, a))| (r, *a)).collect()
                    };
                    // No RETURNING: the count of inserted rows says whether any was skipped
                    // (each returned row would be one more hand-off from SQLite's thread).
                    let inserted = if fresh.is_empty() {
                        0
                    } else if MULTI_STATEMENT && fresh.len() <= 500 && moved.len() <= 500 {
                        // One query, one hand-off: the insert, then the counters' update,
                        // whose row count is known (every moved room exists: it was locked).
                        let mut qb = sqlx::QueryBuilder::<$db>::new("");
                        push_insert(&mut qb, &fresh);
                        if !moved.is_empty() {
                            qb.push("; ");
                            push_counters(&mut qb, &moved)?;
                        }
                        let done = qb.build().execute(&mut *tx).await.map_err(|e| {
                            let id = fresh.first().map(|m| m.id.as_str()).unwrap_or_default();
                            db_err(e, "message", id, "room", "")
                        })?;
                        usize::try_from(done.rows_affected()).unwrap_or(usize::MAX).saturating_sub(moved.len())
                    } else {
                        let mut inserted = 0usize;
                        for chunk in fresh.chunks(500) {
                            let mut qb = sqlx::QueryBuilder::<$db>::new("");
                            push_insert(&mut qb, chunk);
                            let done = qb.build().execute(&mut *tx).await.map_err(|e| {
                                let id = chunk.first().map(|m| m.id.as_str()).unwrap_or_default();
                                db_err(e, "message", id, "room", "")
                            })?;
                            inserted += usize::try_from(done.rows_affected()).unwrap_or(usize::MAX);
                        }
                        if inserted == fresh.len() {
                            for chunk in moved.chunks(500) {
                                let mut qb = sqlx::QueryBuilder::<$db>::new("");
                                push_counters(&mut qb, chunk)?;
                                qb.build().execute(&mut *tx).await.map_err(store_err)?;
                            }
                        }
                        inserted
                    };
                    if inserted != fresh.len() {
                        tx.rollback().await.map_err(store_err)?;
                        if optimistic {
                            continue;
                        }
                        return Err(realtime_core::Error::Store("a concurrent insert took a client id".into()));
                    }
                    tx.commit().await.map_err(store_err)?;
                    // Still holding the writing connection: the next one-query batch to
                    // these rooms reads their numbers again.
                    self.forget_seqs(rooms.iter().map(String::as_str));
                    return Ok(out);
                }
                Err(realtime_core::Error::Internal("batch insert fell through".into()))
            }

            async fn get_message(&self, id: &str) -> realtime_core::Result<Option<realtime_core::Message>> {
                let row = sqlx::query(MSG_BY_ID).bind(id).fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                row.as_ref().map(rows::message).transpose()
            }

            async fn update_message(&self, m: &realtime_core::Message) -> realtime_core::Result<()> {
                use crate::sql::micros;
                let r = sqlx::query("UPDATE realtime_messages SET content = $2, status = $3, edited_at = $4, deleted_at = $5 WHERE id = $1")
                    .bind(&m.id).bind(m.content.as_bytes()).bind(m.status.as_str())
                    .bind(m.edited_at.map(micros)).bind(m.deleted_at.map(micros))
                    .execute(&mut *self.writer().await?).await.map_err(crate::sql::store_err)?;
                if r.rows_affected() == 0 {
                    return Err(realtime_core::Error::NotFound { kind: "message", id: m.id.clone() });
                }
                Ok(())
            }

            async fn history(&self, room_id: &str, before: Option<u64>, limit: u32) -> realtime_core::Result<realtime_core::HistoryPage> {
                let before = before.map_or(i64::MAX, crate::sql::to_i64);
                let rows = sqlx::query(MSG_HISTORY)
                    .bind(room_id).bind(before).bind(i64::from(limit) + 1)
                    .fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                let has_more = rows.len() > limit as usize;
                let mut messages = rows.iter().take(limit as usize).map(rows::message).collect::<realtime_core::Result<Vec<_>>>()?;
                messages.reverse();
                Ok(realtime_core::HistoryPage { messages, has_more })
            }

            async fn messages_after(&self, room_id: &str, after: u64, limit: u32) -> realtime_core::Result<Vec<realtime_core::Message>> {
                let rows = sqlx::query(MSG_AFTER)
                    .bind(room_id).bind(crate::sql::to_i64(after)).bind(i64::from(limit))
                    .fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                rows.iter().map(rows::message).collect()
            }

            async fn latest_seq(&self, room_id: &str) -> realtime_core::Result<u64> {
                use sqlx::Row;
                let row = sqlx::query(LATEST_SEQ).bind(room_id)
                    .fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                match row {
                    Some(r) => Ok(crate::sql::to_u64(r.try_get("last_seq").map_err(crate::sql::store_err)?)),
                    None => Ok(0),
                }
            }

            async fn add_reaction(&self, r: &realtime_core::Reaction) -> realtime_core::Result<bool> {
                let res = sqlx::query("INSERT INTO realtime_reactions (message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                    .bind(&r.message_id).bind(&r.user_id).bind(&r.emoji).bind(crate::sql::micros(r.created_at))
                    .execute(&mut *self.writer().await?).await
                    .map_err(|e| crate::sql::db_err(e, "reaction", &r.emoji, "message", &r.message_id))?;
                Ok(res.rows_affected() > 0)
            }

            async fn remove_reaction(&self, message_id: &str, user_id: &str, emoji: &str) -> realtime_core::Result<bool> {
                let r = sqlx::query("DELETE FROM realtime_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3")
                    .bind(message_id).bind(user_id).bind(emoji).execute(&mut *self.writer().await?).await.map_err(crate::sql::store_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_reactions(&self, message_id: &realtime_core::MessageId) -> realtime_core::Result<Vec<realtime_core::Reaction>> {
                let rows = sqlx::query("SELECT * FROM realtime_reactions WHERE message_id = $1 ORDER BY created_at, user_id, emoji")
                    .bind(message_id).fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                rows.iter().map(rows::reaction).collect()
            }

            async fn advance_read_pointer(&self, room_id: &str, user_id: &str, seq: u64, now: realtime_core::Timestamp) -> realtime_core::Result<u64> {
                use sqlx::Row;
                sqlx::query("INSERT INTO realtime_read_pointers (room_id, user_id, seq, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (room_id, user_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at WHERE realtime_read_pointers.seq < excluded.seq")
                    .bind(room_id).bind(user_id).bind(crate::sql::to_i64(seq)).bind(crate::sql::micros(now))
                    .execute(&mut *self.writer().await?).await
                    .map_err(|e| crate::sql::db_err(e, "read_pointer", user_id, "room", room_id))?;
                let row = sqlx::query("SELECT seq FROM realtime_read_pointers WHERE room_id = $1 AND user_id = $2")
                    .bind(room_id).bind(user_id).fetch_one(&self.pool).await.map_err(crate::sql::store_err)?;
                Ok(crate::sql::to_u64(row.try_get("seq").map_err(crate::sql::store_err)?))
            }

            async fn read_pointer(&self, room_id: &str, user_id: &str) -> realtime_core::Result<u64> {
                use sqlx::Row;
                let row = sqlx::query("SELECT seq FROM realtime_read_pointers WHERE room_id = $1 AND user_id = $2")
                    .bind(room_id).bind(user_id).fetch_optional(&self.pool).await.map_err(crate::sql::store_err)?;
                match row {
                    Some(r) => Ok(crate::sql::to_u64(r.try_get("seq").map_err(crate::sql::store_err)?)),
                    None => Ok(0),
                }
            }

            async fn unread_count(&self, room_id: &str, user_id: &str) -> realtime_core::Result<u64> {
                use sqlx::Row;
                let row = sqlx::query("SELECT COUNT(*) AS n FROM realtime_messages WHERE room_id = $1 AND seq > COALESCE((SELECT seq FROM realtime_read_pointers WHERE room_id = $1 AND user_id = $2), 0) AND sender_id <> $2 AND deleted_at IS NULL")
                    .bind(room_id).bind(user_id).fetch_one(&self.pool).await.map_err(crate::sql::store_err)?;
                Ok(crate::sql::to_u64(row.try_get("n").map_err(crate::sql::store_err)?))
            }

            async fn set_favorite(&self, f: &realtime_core::Favorite, on: bool) -> realtime_core::Result<bool> {
                let r = if on {
                    sqlx::query("INSERT INTO realtime_favorites (user_id, target_id, kind, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                        .bind(&f.user_id).bind(&f.target_id).bind(f.kind.as_str()).bind(crate::sql::micros(f.created_at))
                        .execute(&mut *self.writer().await?).await
                } else {
                    sqlx::query("DELETE FROM realtime_favorites WHERE user_id = $1 AND target_id = $2 AND kind = $3")
                        .bind(&f.user_id).bind(&f.target_id).bind(f.kind.as_str())
                        .execute(&mut *self.writer().await?).await
                }
                .map_err(crate::sql::store_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_favorites(&self, user_id: &str) -> realtime_core::Result<Vec<realtime_core::Favorite>> {
                let rows = sqlx::query("SELECT * FROM realtime_favorites WHERE user_id = $1 ORDER BY created_at, target_id")
                    .bind(user_id).fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                rows.iter().map(rows::favorite).collect()
            }

            async fn append_event(&self, e: &realtime_core::Event) -> realtime_core::Result<()> {
                let body = String::from_utf8(e.to_json_bytes()).map_err(|e| realtime_core::Error::Json(e.to_string()))?;
                sqlx::query("INSERT INTO realtime_events (id, type, room_id, user_id, timestamp, body) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(e.id.to_string()).bind(e.event_type.as_str()).bind(&e.room_id).bind(&e.user_id)
                    .bind(crate::sql::micros(e.timestamp)).bind(body)
                    .execute(&mut *self.writer().await?).await.map_err(crate::sql::store_err)?;
                Ok(())
            }

            async fn list_events(&self, q: &realtime_core::EventQuery) -> realtime_core::Result<Vec<realtime_core::Event>> {
                let rows = sqlx::query("SELECT body FROM realtime_events WHERE ($1 IS NULL OR substr(type, 1, length($1)) = $1) AND ($2 IS NULL OR room_id = $2) AND ($3 IS NULL OR user_id = $3) ORDER BY pos DESC LIMIT $4")
                    .bind(q.type_prefix.clone()).bind(q.room_id.clone()).bind(q.user_id.clone())
                    .bind(i64::from(q.limit.min(1000)))
                    .fetch_all(&self.pool).await.map_err(crate::sql::store_err)?;
                rows.iter().map(rows::event).collect()
            }
        }

        const MSG_BY_ID: &str = "SELECT id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at FROM realtime_messages WHERE id = $1";
        const MSG_BY_CLIENT_ID: &str = "SELECT id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at FROM realtime_messages WHERE room_id = $1 AND sender_id = $2 AND client_id = $3";
        const MSG_HISTORY: &str = "SELECT id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at FROM realtime_messages WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";
        const MSG_AFTER: &str = "SELECT id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at FROM realtime_messages WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

        const USER_BY_ID: &str = "SELECT id, username, display_name, email, avatar, status, last_seen, password_hash, created_at, updated_at FROM realtime_users WHERE id = $1";
        const USER_BY_USERNAME: &str = "SELECT id, username, display_name, email, avatar, status, last_seen, password_hash, created_at, updated_at FROM realtime_users WHERE username = $1";
    };
}

pub(crate) use impl_store;
