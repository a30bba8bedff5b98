// Package jetq is patchd's NATS JetStream plumbing, shared by the gateway
// (internal/gateway, an api.Service over JetStream) and the runner
// (internal/natsrun, the door that feeds a daemon from the queue): the
// names of the streams, subjects, buckets and consumers; connecting;
// creating them (Ensure, EnsureConsumer); the keys of the patch views;
// the envelope of a work message; the control requests' replies; and the
// embedded server of `patchd gateway --embedded-nats`.
//
// It knows nothing of the store, the worker or the patch parser: it moves
// bytes and api types. Only jetq, gateway and natsrun import NATS
// (internal/deptest holds it).
package jetq
