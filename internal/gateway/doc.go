// Package gateway implements api.Service over NATS JetStream: the
// service `patchd gateway` serves through the same doors the daemon does
// (internal/server, mcpserver, dashboard), with no store and no
// workspace of its own.
//
// Submit checks a patch block as the daemon would (internal/patch's
// parser, the paths lexically), publishes it to its workspace's subject
// of the work queue and answers once JetStream has it (PubAck); runners
// (internal/natsrun, in each workspace's daemon) apply it. Get and List
// read the patch views the runners keep in the PATCHD_PATCHES bucket,
// Subscribe and Wait the PATCHD_EVENTS stream (an event's id is its
// sequence there), Status the PATCHD_WORKSPACES bucket; Preview, Revert,
// Drop, ReadFile and ListFiles are requests to the workspace's runner.
//
// A Service bound to a workspace (Bind) takes patches without a
// "workspace" field and answers for that workspace only: the gateway
// command serves one under /ws/<name>/.
package gateway
