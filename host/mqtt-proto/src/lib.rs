//! MQTT protocol (in progress).
