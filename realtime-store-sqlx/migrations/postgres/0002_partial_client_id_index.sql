-- Idempotency keys are optional: only messages sent with a client id need an entry in
-- the unique index (NULLs never conflicted anyway), so messages without one update one
-- index fewer.
DROP INDEX realtime_messages_client_id;
CREATE UNIQUE INDEX realtime_messages_client_id ON realtime_messages (room_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
