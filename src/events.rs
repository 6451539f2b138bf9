//! Live events: the adjudication room of one item and round, and a study's progress stream.
//!
//! [`EventHub`] keeps, per room, a broadcast channel and the last [`HISTORY_LEN`] events with
//! increasing sequence numbers, so a client that reconnects with the last number it saw gets
//! what it missed (or a `resync` event telling it to reload, when its gap is older than the
//! history). Events are JSON objects with a `type` field; the hub adds `seq`.
//!
//! Several server processes on one PostgreSQL database share events through LISTEN/NOTIFY:
//! [`EventHub::publish`] also sends the event on the [`CHANNEL`] channel tagged with this
//! process's origin id, and a listener thread ([`spawn_postgres_listener`]) rebroadcasts
//! events of other origins locally. Sequence numbers are per process: a client that
//! reconnects to another process gets a `resync` rather than a replay.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events kept per room for replay.
pub const HISTORY_LEN: usize = 512;
/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "quorum_events";
/// Largest NOTIFY payload PostgreSQL accepts is 8000 bytes; larger events stay local.
const MAX_NOTIFY_BYTES: usize = 7900;

/// Destination of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Room {
    /// A study's progress: item status changes, for leads and seniors.
    Study { project_id: i64 },
    /// The adjudication room of one item and round.
    Item { item_id: i64, round: i32 },
}

struct RoomChannel {
    sender: broadcast::Sender<Arc<str>>,
    history: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
    /// Who is looking, by display name, with a count of their open connections.
    present: HashMap<String, usize>,
}

impl RoomChannel {
    fn new() -> Self {
        let (sender, _) = broadcast::channel(HISTORY_LEN);
        RoomChannel { sender, history: VecDeque::new(), next_seq: 1, present: HashMap::new() }
    }

    fn push(&mut self, mut event: serde_json::Value) {
        let seq = self.next_seq;
        self.next_seq += 1;
        event["seq"] = serde_json::json!(seq);
        let text: Arc<str> = Arc::from(event.to_string());
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back((seq, text.clone()));
        // A send without receivers is not an error: no client is connected to the room.
        let _ = self.sender.send(text);
    }

    fn presence_event(&self) -> serde_json::Value {
        let mut names: Vec<&String> = self.present.keys().collect();
        names.sort();
        serde_json::json!({ "type": "presence", "present": names })
    }
}

/// Start of a subscription: missed events to send first, then the live receiver.
pub struct Subscription {
    pub missed: Vec<Arc<str>>,
    /// True when the client's last sequence number is older than the history: it must reload.
    pub resync: bool,
    pub receiver: broadcast::Receiver<Arc<str>>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: u64,
    room: Room,
    event: serde_json::Value,
}

/// Sends events to the NOTIFY channel of a PostgreSQL database.
pub type Notifier = Box<dyn Fn(&str) + Send + Sync>;

/// The rooms of this process.
pub struct EventHub {
    rooms: Mutex<HashMap<Room, RoomChannel>>,
    origin: u64,
    notifier: Mutex<Option<Notifier>>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub { rooms: Mutex::new(HashMap::new()), origin: rand::random(), notifier: Mutex::new(None) }
    }
}

impl EventHub {
    /// Sends events to other processes through `notifier` from now on.
    pub fn set_notifier(&self, notifier: Notifier) {
        *self.notifier.lock().unwrap_or_else(|e| e.into_inner()) = Some(notifier);
    }

    /// Publishes an event to a room here and, on PostgreSQL, to the other processes.
    pub fn publish(&self, room: Room, event: serde_json::Value) {
        let envelope = Envelope { origin: self.origin, room, event: event.clone() };
        self.publish_local(room, event);
        if let Some(notify) = self.notifier.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            match serde_json::to_string(&envelope) {
                Ok(payload) if payload.len() <= MAX_NOTIFY_BYTES => notify(&payload),
                Ok(payload) => tracing::warn!(bytes = payload.len(), "event too large for NOTIFY; other servers miss it"),
                Err(error) => tracing::warn!(%error, "event could not be encoded for NOTIFY"),
            }
        }
    }

    fn publish_local(&self, room: Room, event: serde_json::Value) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.entry(room).or_insert_with(RoomChannel::new).push(event);
    }

    /// Handles a NOTIFY payload from another process; its own events are ignored.
    pub fn receive_notification(&self, payload: &str) {
        match serde_json::from_str::<Envelope>(payload) {
            Ok(envelope) if envelope.origin != self.origin => self.publish_local(envelope.room, envelope.event),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "ignoring a malformed event notification"),
        }
    }

    /// Subscribes to a room; `since` is the last sequence number the client saw.
    pub fn subscribe(&self, room: Room, since: Option<u64>) -> Subscription {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let channel = rooms.entry(room).or_insert_with(RoomChannel::new);
        let receiver = channel.sender.subscribe();
        let Some(since) = since else {
            return Subscription { missed: Vec::new(), resync: false, receiver };
        };
        let oldest = channel.history.front().map_or(channel.next_seq, |(seq, _)| *seq);
        let resync = since + 1 < oldest || since >= channel.next_seq;
        let missed = if resync {
            Vec::new()
        } else {
            channel.history.iter().filter(|(seq, _)| *seq > since).map(|(_, text)| text.clone()).collect()
        };
        Subscription { missed, resync, receiver }
    }

    /// Marks `name` present in the room and tells everyone; the guard leaves on drop.
    pub fn join(self: &Arc<Self>, room: Room, name: String) -> PresenceGuard {
        {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let channel = rooms.entry(room).or_insert_with(RoomChannel::new);
            *channel.present.entry(name.clone()).or_insert(0) += 1;
            let event = channel.presence_event();
            channel.push(event);
        }
        PresenceGuard { hub: self.clone(), room, name }
    }

    fn leave(&self, room: Room, name: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = rooms.get_mut(&room) {
            if let Some(count) = channel.present.get_mut(name) {
                *count -= 1;
                if *count == 0 {
                    channel.present.remove(name);
                }
            }
            let event = channel.presence_event();
            channel.push(event);
        }
    }
}

/// Presence in a room for as long as it lives.
pub struct PresenceGuard {
    hub: Arc<EventHub>,
    room: Room,
    name: String,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.hub.leave(self.room, &self.name);
    }
}

/// Shares this hub's events with other processes on the same PostgreSQL database: sends them
/// with `pg_notify` through the pool and starts the listener thread.
pub fn connect_postgres(hub: &Arc<EventHub>, db: &crate::store::Database, url: &str) {
    let pool = db.clone();
    hub.set_notifier(Box::new(move |payload: &str| {
        use diesel::RunQueryDsl;
        let sent = pool.conn().map_err(|e| e.to_string()).and_then(|mut conn| {
            let crate::store::DbConnection::Postgres(pg) = &mut *conn else {
                return Ok(());
            };
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(payload)
                .execute(pg)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Err(error) = sent {
            tracing::warn!(%error, "event could not be sent to other server processes");
        }
    }));
    spawn_postgres_listener(hub.clone(), url.to_string());
}

/// Listens on the PostgreSQL channel in a background thread and rebroadcasts events from
/// other processes; reconnects after a failure, waiting 1 s between attempts.
pub fn spawn_postgres_listener(hub: Arc<EventHub>, url: String) {
    std::thread::Builder::new()
        .name("quorum-pg-listener".into())
        .spawn(move || loop {
            if let Err(error) = listen(&hub, &url) {
                tracing::warn!(%error, "event listener lost its PostgreSQL connection; reconnecting in 1 s");
            }
            std::thread::sleep(Duration::from_secs(1));
        })
        .map_err(|error| tracing::error!(%error, "could not start the event listener thread"))
        .ok();
}

fn listen(hub: &EventHub, url: &str) -> Result<(), String> {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(url).map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn).map_err(|e| e.to_string())?;
    tracing::info!("listening for events of other server processes");
    loop {
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| e.to_string())?;
            hub.receive_notification(&notification.payload);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOM: Room = Room::Item { item_id: 1, round: 1 };

    #[test]
    fn reconnect_replays_missed_events() {
        let hub = EventHub::default();
        hub.publish(ROOM, json!({"type": "message", "body": "a"}));
        hub.publish(ROOM, json!({"type": "message", "body": "b"}));
        hub.publish(ROOM, json!({"type": "message", "body": "c"}));
        let subscription = hub.subscribe(ROOM, Some(1));
        assert!(!subscription.resync);
        assert_eq!(subscription.missed.len(), 2);
        assert!(subscription.missed[0].contains("\"b\""));
        assert!(subscription.missed[1].contains("\"seq\":3"));
    }

    #[test]
    fn gap_older_than_history_asks_resync() {
        let hub = EventHub::default();
        for i in 0..(HISTORY_LEN + 10) {
            hub.publish(ROOM, json!({"type": "message", "body": i}));
        }
        assert!(hub.subscribe(ROOM, Some(2)).resync);
        assert!(hub.subscribe(ROOM, Some(HISTORY_LEN as u64 + 100)).resync);
    }

    #[test]
    fn presence_follows_guards() {
        let hub = Arc::new(EventHub::default());
        let mut receiver = hub.subscribe(ROOM, None).receiver;
        let first = hub.join(ROOM, "Grader A".into());
        let second = hub.join(ROOM, "Grader B".into());
        drop(first);
        let events: Vec<String> = std::iter::from_fn(|| receiver.try_recv().ok().map(|e| e.to_string())).collect();
        assert_eq!(events.len(), 3);
        assert!(events[1].contains("[\"Grader A\",\"Grader B\"]"));
        assert!(events[2].contains("[\"Grader B\"]"));
        drop(second);
    }

    #[test]
    fn own_notifications_are_ignored() {
        let hub = EventHub::default();
        let mut receiver = hub.subscribe(ROOM, None).receiver;
        let own = serde_json::to_string(&Envelope { origin: hub.origin, room: ROOM, event: json!({"type": "x"}) }).unwrap_or_default();
        hub.receive_notification(&own);
        assert!(receiver.try_recv().is_err());
        let other = serde_json::to_string(&Envelope { origin: hub.origin ^ 1, room: ROOM, event: json!({"type": "x"}) }).unwrap_or_default();
        hub.receive_notification(&other);
        assert!(receiver.try_recv().is_ok());
    }
}
