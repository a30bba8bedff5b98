// Package natsconf models the NATS security patchd's scale-out needs: one
// account, PATCHD, with JetStream; a gateway user that publishes work,
// runs the JetStream and KV API and makes control requests; and one runner
// user per workspace that may only consume that workspace's patches and
// publish its events, dead letters, KV keys and control replies. It
// generates the credentials (passwords from crypto/rand, or nkeys) and
// renders them as a nats-server configuration file or as *server.Options
// for an embedded server (see "Scale out" in the README).
//
// The names it grants (streams, subjects, consumers, buckets) are
// internal/jetq's.
package natsconf

import (
	"slices"

	"github.com/patchd/patchd/internal/jetq"
)

// kvStreamPrefix starts the name of a KV bucket's stream.
const kvStreamPrefix = "KV_"

// Account is the NATS account all of patchd's users belong to: it holds
// only patchd's streams, so the gateway may run the whole JetStream API
// in it.
const Account = "PATCHD"

// GatewayUser is the gateway's user name.
const GatewayUser = "gateway"

// RunnerUserPrefix starts a runner's user name: RunnerUserPrefix+<ws>.
const RunnerUserPrefix = "run-"

// RunnerUser is the user name of the runner of workspace ws.
func RunnerUser(ws string) string { return RunnerUserPrefix + ws }

// RunnerInbox is the inbox prefix a runner of workspace ws must connect
// with (nats.CustomInboxPrefix): it may subscribe only under it, so no
// runner can read the replies (fetched messages among them) another
// runner asked for.
func RunnerInbox(ws string) string { return jetq.RunnerInbox(ws) }

// checkWorkspace refuses a name that is not one NATS subject token of
// the allowed characters (jetq.CheckWorkspace): a "*" or ">" in a name
// would widen a grant.
func checkWorkspace(ws string) error { return jetq.CheckWorkspace(ws) }

// Permissions is what a user may publish and subscribe to; anything
// else is a permission violation. AllowResponses lets the user publish
// one reply to each request it received (a runner's control replies).
type Permissions struct {
	Publish        []string
	Subscribe      []string
	AllowResponses bool
}

// GatewayPermissions are the gateway's: publish work to any workspace and
// control requests to any runner, run the JetStream API (streams,
// buckets, consumers, direct gets, acks) of the PATCHD account, write the
// KV buckets, and subscribe to its inbox, patchd's subjects and the
// JetStream advisories. It also publishes the dead letters (and their
// events) of messages whose runner died on each delivery: reading and
// removing a work message by its stream sequence cannot be granted to
// one workspace, so no runner may do it.
func GatewayPermissions() Permissions {
	return Permissions{
		Publish: []string{
			jetq.SubjectWorkPrefix + "*",
			jetq.SubjectCtlPrefix + "*.*",
			// Dead letters whose runner died on each delivery
			// (gateway.DeadLetters): the copy and its event.
			jetq.SubjectDeadPrefix + "*",
			jetq.SubjectEventsPrefix + "*",
			"$JS.API.>",
			"$JS.ACK.>",
			"$JS.FC.>",
			"$KV." + jetq.BucketPatches + ".>",
			"$KV." + jetq.BucketWorkspaces + ".>",
		},
		Subscribe: []string{
			"_INBOX.>",
			"patchd.>",
			"$JS.EVENT.>",
		},
	}
}

// streamsRunnerInfo are the streams a runner may look up (STREAM.INFO
// tells sizes and configuration, never a message).
var streamsRunnerInfo = []string{
	jetq.StreamWork, jetq.StreamEvents, jetq.StreamDead, jetq.StreamAdvisories,
	kvStreamPrefix + jetq.BucketPatches, kvStreamPrefix + jetq.BucketWorkspaces,
}

// RunnerPermissions are the runner of workspace ws's: create, look up,
// fetch from and ack its consumer run-<ws> (filtered on patchd.ws.<ws>);
// publish patchd.events.<ws> and patchd.dead.<ws>; put and get its KV
// keys (<ws>.* in PATCHD_PATCHES, <ws> in PATCHD_WORKSPACES); serve
// patchd.ctl.<ws>.* and reply; subscribe only under RunnerInbox(ws).
//
// It may not read or delete a work message by its stream sequence
// (STREAM.MSG.GET, DIRECT.GET, STREAM.MSG.DELETE of PATCHD): NATS cannot
// limit those to a subject (the sequence is in the request's body), so
// they would reach every workspace's patches. The runner buries a
// dead letter from the message delivered to it; the gateway buries the
// rest from the max-deliveries advisories.
func RunnerPermissions(ws string) (Permissions, error) {
	if err := checkWorkspace(ws); err != nil {
		return Permissions{}, err
	}
	run := jetq.ConsumerName(ws)
	kvPatches := "$KV." + jetq.BucketPatches + "." + ws + ".*"
	kvWorkspace := "$KV." + jetq.BucketWorkspaces + "." + ws
	pub := []string{"$JS.API.INFO"}
	for _, s := range streamsRunnerInfo {
		pub = append(pub, "$JS.API.STREAM.INFO."+s)
	}
	pub = append(pub, consumerGrants(jetq.StreamWork, run, jetq.SubjectWorkPrefix+ws)...)
	// A runner that stops gives up its pin on run-<ws>, for a standby.
	pub = append(pub, "$JS.API.CONSUMER.UNPIN."+jetq.StreamWork+"."+run)
	pub = append(pub,
		jetq.SubjectEventsPrefix+ws,
		jetq.SubjectDeadPrefix+ws,
		kvPatches,
		kvWorkspace,
		"$JS.API.DIRECT.GET."+kvStreamPrefix+jetq.BucketPatches+"."+kvPatches,
		"$JS.API.DIRECT.GET."+kvStreamPrefix+jetq.BucketWorkspaces+"."+kvWorkspace,
	)
	return Permissions{
		Publish:        pub,
		Subscribe:      []string{RunnerInbox(ws) + ".>", jetq.SubjectCtlPrefix + ws + ".*"},
		AllowResponses: true,
	}, nil
}

// consumerGrants let a user create (only with this filter), look up,
// fetch from and acknowledge (ack, nak, in progress, term; the v1 and v2
// ack subjects) one durable consumer.
func consumerGrants(stream, consumer, filter string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + stream + "." + consumer + "." + filter,
		"$JS.API.CONSUMER.INFO." + stream + "." + consumer,
		"$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer,
		"$JS.ACK." + stream + "." + consumer + ".>",
		"$JS.ACK.*.*." + stream + "." + consumer + ".>",
	}
}

// sorted returns the workspaces sorted, without duplicates, each checked.
func sorted(workspaces []string) ([]string, error) {
	out := slices.Clone(workspaces)
	slices.Sort(out)
	out = slices.Compact(out)
	for _, ws := range out {
		if err := checkWorkspace(ws); err != nil {
			return nil, err
		}
	}
	return out, nil
}
