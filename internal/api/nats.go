package api

// NATSStatus is how a runner (a daemon with --queue) stands with NATS
// JetStream (Status.NATS): the servers it uses, without credentials, its
// workspace's name, whether it is connected now, and, when it is not,
// why. A runner that is not connected still serves its own doors.
type NATSStatus struct {
	URL       string `json:"url"`
	Workspace string `json:"workspace"`
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
}
