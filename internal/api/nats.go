package api

// NATSStatus is how a runner (a daemon with --queue) stands with NATS
// JetStream (Status.NATS): the servers it uses, without credentials, its
// workspace's name, whether it is connected now, and, when it is not,
// why. A runner that is not connected still serves its own doors.
//
// Of two runners of one workspace (two machines), NATS gives the
// workspace's patches to one: Pinned says this is that one, Standby that
// another runner is (this one takes over when that one stops or its pin
// lapses). Both are false while no runner holds the workspace (no patch
// delivered since the last one stopped).
type NATSStatus struct {
	URL       string `json:"url"`
	Workspace string `json:"workspace"`
	Connected bool   `json:"connected"`
	Pinned    bool   `json:"pinned"`
	Standby   bool   `json:"standby"`
	Error     string `json:"error,omitempty"`
}
