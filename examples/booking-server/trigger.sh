#!/usr/bin/env bash
# Trigger a Pusher event on booking-server the way Laravel's pusher driver does: a signed
# POST /apps/{id}/events (Pusher HTTP API, auth_signature = HMAC-SHA256 of
# "POST\n<path>\n<sorted query>"). Needs curl, openssl and md5sum.
#
#   ./trigger.sh <channel> <event name> <data JSON>
#   ./trigger.sh availability 'App\Events\AvailabilityUpdated' '{"data":{"session_id":1,"available_slots":5}}'
#
# PUSHER_APP_ID, PUSHER_APP_KEY, PUSHER_APP_SECRET and PUSHER_URL (default
# http://127.0.0.1:6001) say where and as which app.
set -euo pipefail
channel=$1 name=$2 data=$3
id=${PUSHER_APP_ID:-app-id} key=${PUSHER_APP_KEY:-app-key} secret=${PUSHER_APP_SECRET:-app-secret}
url=${PUSHER_URL:-http://127.0.0.1:6001}
# The body: data is a JSON *string* holding the event's JSON, as Laravel sends it.
body=$(printf '%s' "$data" | python3 -c 'import json,sys; c,n=sys.argv[1:]; print(json.dumps({"name":n,"channels":[c],"data":sys.stdin.read()},separators=(",",":")),end="")' "$channel" "$name")
path="/apps/$id/events"
md5=$(printf '%s' "$body" | md5sum | cut -d' ' -f1)
query="auth_key=$key&auth_timestamp=$(date +%s)&auth_version=1.0&body_md5=$md5"
signature=$(printf 'POST\n%s\n%s' "$path" "$query" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.* //')
curl -sS --fail-with-body -X POST "$url$path?$query&auth_signature=$signature" \
  -H 'Content-Type: application/json' --data-binary "$body"
echo
