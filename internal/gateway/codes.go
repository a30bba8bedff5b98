package gateway

// The codes the gateway's refusals carry besides the api ones (README,
// "Error codes").
const (
	// CodeWorkspaceUnknown: a patch or a request names a workspace no
	// runner has registered and the gateway does not list (Kind
	// not_found); the message names the ones that exist.
	CodeWorkspaceUnknown = "workspace_unknown"
	// CodeWorkspaceAmbiguous: an id asked for without a workspace is a
	// patch of several (Kind conflict); the message names them.
	CodeWorkspaceAmbiguous = "workspace_ambiguous"
	// CodeRunnerUnavailable: no runner of the workspace answered a
	// request only it can serve (preview, revert, drop, files) (Kind
	// unavailable).
	CodeRunnerUnavailable = "runner_unavailable"
	// CodeQueueUnavailable: NATS did not take or answer in time (Kind
	// unavailable); nothing was queued, send again.
	CodeQueueUnavailable = "queue_unavailable"
)
