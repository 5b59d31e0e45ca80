//! The events bus behind SSE (spec 04 §1). Every service publishes refresh hints here after
//! commit; each subscriber has a bounded queue and is dropped when it overflows, so a
//! publisher never blocks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// Per-subscriber queue length.
pub const SUBSCRIBER_QUEUE: usize = 256;

/// One event as sent on the wire: `{id, type, timestamp, payload}`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Process-wide counter as a decimal string, from `"1"`.
    pub id: String,
    /// Event type, e.g. `config.list.updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// UTC ISO time.
    pub timestamp: String,
    /// JSON payload.
    pub payload: Payload,
}

/// An event payload. Large projections are built once per refresh and shared between events
/// (and subscribers) as already-serialised JSON instead of being rebuilt or deep-copied per
/// event; on the wire every form is plain JSON.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A JSON value.
    Json(Value),
    /// Serialised JSON, shared.
    Raw(Arc<RawValue>),
    /// A JSON object whose members are payloads, written in the given order.
    Object(Vec<(&'static str, Payload)>),
}

impl Payload {
    /// Serialised JSON as a shareable payload (`null` if the value cannot be serialised).
    pub fn raw<T: Serialize + ?Sized>(v: &T) -> Payload {
        match serde_json::value::to_raw_value(v) {
            Ok(r) => Payload::Raw(Arc::from(r)),
            Err(_) => Payload::Json(Value::Null),
        }
    }

    /// The payload as a JSON value (for in-process readers and tests).
    pub fn to_value(&self) -> Value {
        match self {
            Payload::Json(v) => v.clone(),
            Payload::Raw(r) => serde_json::from_str(r.get()).unwrap_or(Value::Null),
            Payload::Object(m) => Value::Object(m.iter().map(|(k, v)| ((*k).to_string(), v.to_value())).collect()),
        }
    }
}

/// `payload["key"]` on an object payload: the member when it is a JSON value, else `null`
/// (use [`Payload::to_value`] to read serialised members).
impl std::ops::Index<&str> for Payload {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Payload::Json(v) => &v[key],
            Payload::Object(m) => match m.iter().find(|(k, _)| *k == key) {
                Some((_, Payload::Json(v))) => v,
                _ => &NULL,
            },
            Payload::Raw(_) => &NULL,
        }
    }
}

impl From<Value> for Payload {
    fn from(v: Value) -> Self {
        Payload::Json(v)
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Json(v) => v.serialize(s),
            Payload::Raw(r) => r.serialize(s),
            Payload::Object(members) => {
                let mut m = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

struct Inner {
    next_id: AtomicU64,
    closed: AtomicBool,
    subscribers: Mutex<Vec<mpsc::Sender<Arc<Event>>>>,
}

/// Cheap-to-clone handle to the bus.
#[derive(Clone)]
pub struct EventBus(Arc<Inner>);

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A new bus.
    pub fn new() -> Self {
        EventBus(Arc::new(Inner {
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            subscribers: Mutex::new(Vec::new()),
        }))
    }

    /// Builds an event with the next id (not published).
    pub fn make(&self, kind: &str, payload: impl Into<Payload>) -> Event {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        Event { id: id.to_string(), kind: kind.to_string(), timestamp: crate::util::now_iso(), payload: payload.into() }
    }

    /// Publishes to every subscriber; full or closed queues are dropped. Nothing is kept when
    /// there are no subscribers.
    pub fn publish(&self, kind: &str, payload: impl Into<Payload>) {
        if self.0.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut subs = match self.0.subscribers.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if subs.is_empty() {
            return;
        }
        let ev = Arc::new(self.make(kind, payload));
        subs.retain(|tx| tx.try_send(ev.clone()).is_ok());
    }

    /// Subscribes; the receiver ends when the bus closes or this queue overflowed.
    pub fn subscribe(&self) -> mpsc::Receiver<Arc<Event>> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        if !self.0.closed.load(Ordering::Relaxed) {
            let mut subs = match self.0.subscribers.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            subs.push(tx);
        }
        rx
    }

    /// Number of live subscribers.
    pub fn subscriber_count(&self) -> usize {
        match self.0.subscribers.lock() {
            Ok(s) => s.iter().filter(|t| !t.is_closed()).count(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// Closes every subscription; later publishes are no-ops.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Relaxed);
        match self.0.subscribers.lock() {
            Ok(mut s) => s.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fan_out_and_overflow() {
        let bus = EventBus::new();
        let mut a = bus.subscribe();
        let slow = bus.subscribe();
        bus.publish("x", serde_json::json!({"n": 1}));
        let ev = a.recv().await.unwrap();
        assert_eq!(ev.kind, "x");
        assert_eq!(ev.payload.to_value()["n"], 1);
        // `slow` never reads: after SUBSCRIBER_QUEUE more events it is dropped.
        for i in 0..SUBSCRIBER_QUEUE {
            bus.publish("y", serde_json::json!(i));
            a.recv().await.unwrap();
        }
        assert_eq!(bus.subscriber_count(), 1);
        drop(slow);
        bus.close();
        bus.publish("z", Value::Null);
        assert!(a.recv().await.is_none());
    }

    #[test]
    fn payload_forms_serialise_as_plain_json() {
        let shared = Payload::raw(&serde_json::json!([{"b": 1, "a": "x"}]));
        let p = Payload::Object(vec![("config_id", Value::from("c").into()), ("nodes", shared.clone())]);
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"config_id":"c","nodes":[{"a":"x","b":1}]}"#);
        assert_eq!(p.to_value(), serde_json::json!({"config_id": "c", "nodes": [{"a": "x", "b": 1}]}));
    }
}
