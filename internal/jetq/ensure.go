package jetq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureOptions size the streams and buckets.
type EnsureOptions struct {
	// Replicas is each stream's and bucket's replica count: 1 (the
	// default) on one server, 3 in a cluster of three.
	Replicas int
	// DedupWindow is the work queue's duplicate window; 0 means
	// DefaultDedupWindow.
	DedupWindow time.Duration
}

// Streams returns the configurations of the four streams Ensure makes.
func Streams(o EnsureOptions) []jetstream.StreamConfig {
	r := max(o.Replicas, 1)
	dedup := o.DedupWindow
	if dedup <= 0 {
		dedup = DefaultDedupWindow
	}
	return []jetstream.StreamConfig{{
		Name:        StreamWork,
		Description: "patchd: one message per patch to apply, per workspace",
		Subjects:    []string{SubjectWorkPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		Duplicates:  dedup,
		Discard:     jetstream.DiscardOld,
	}, {
		Name:        StreamEvents,
		Description: "patchd: the runners' patch events, per workspace",
		Subjects:    []string{SubjectEventsPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		MaxAge:      EventsMaxAge,
	}, {
		Name:        StreamDead,
		Description: "patchd: patches delivered too often without an outcome, per workspace",
		Subjects:    []string{SubjectDeadPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		MaxAge:      DeadMaxAge,
	}, {
		Name:        StreamAdvisories,
		Description: "patchd: the work queue consumers' max-deliveries advisories",
		Subjects:    []string{SubjectAdvisories},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		MaxAge:      DeadMaxAge,
	}}
}

// Buckets returns the configurations of the two KV buckets Ensure makes.
func Buckets(o EnsureOptions) []jetstream.KeyValueConfig {
	r := max(o.Replicas, 1)
	return []jetstream.KeyValueConfig{{
		Bucket:       BucketPatches,
		Description:  "patchd: each patch's view (api.PatchView JSON), key <workspace>.<escaped id>",
		History:      1,
		MaxValueSize: MaxViewBytes,
		Storage:      jetstream.FileStorage,
		Replicas:     r,
	}, {
		Bucket:      BucketWorkspaces,
		Description: "patchd: each workspace's runner and status",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
	}}
}

// Ensure creates the streams and buckets, or updates them to o where they
// exist (a setting JetStream cannot change, such as a stream's retention,
// is an error naming the stream). It is idempotent, and any number of
// gateways and runners may call it at once.
func Ensure(ctx context.Context, js jetstream.JetStream, o EnsureOptions) error {
	for _, cfg := range Streams(o) {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return err
		}
	}
	for _, cfg := range Buckets(o) {
		if err := ensureBucket(ctx, js, cfg); err != nil {
			return err
		}
	}
	return nil
}

// ensureStream updates the stream, creates it when it does not exist, and
// updates it when another caller created it in between.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	for range 3 {
		_, err := js.UpdateStream(ctx, cfg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("nats: stream %s: %w", cfg.Name, err)
		}
		_, err = js.CreateStream(ctx, cfg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("nats: create stream %s: %w", cfg.Name, err)
		}
	}
	return fmt.Errorf("nats: stream %s: created and removed by others while being ensured", cfg.Name)
}

// ensureBucket is ensureStream for a KV bucket.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) error {
	for range 3 {
		_, err := js.UpdateKeyValue(ctx, cfg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("nats: bucket %s: %w", cfg.Bucket, err)
		}
		_, err = js.CreateKeyValue(ctx, cfg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("nats: create bucket %s: %w", cfg.Bucket, err)
		}
	}
	return fmt.Errorf("nats: bucket %s: created and removed by others while being ensured", cfg.Bucket)
}

// ConsumerOptions tune a workspace's consumer.
type ConsumerOptions struct {
	// MaxDeliver is how often a message is delivered without an outcome
	// before the server gives up on it (an advisory makes it a dead
	// letter); 0 means DefaultMaxDeliver.
	MaxDeliver int
	// AckWait is how long a delivery may go without an ack or a
	// progress signal before it is redelivered; 0 means DefaultAckWait.
	AckWait time.Duration
}

// PriorityGroup is the one priority group of a workspace's consumer:
// runners pull in it, and the server pins it to one runner at a time.
const PriorityGroup = "runners"

// ConsumerConfig is the durable pull consumer of a workspace's patches:
// one at a time (MaxAckPending 1), acked explicitly, and pinned to one
// runner (the priority group PriorityGroup, policy pinned_client): of two
// runners of a workspace, the one that got a message first gets them all
// while it pulls; the other's pulls wait until the pin lapses, AckWait
// after the pinned runner's last pull (or at once when it stops and
// unpins). A pull outside the group gets messages only while none is
// pinned.
func ConsumerConfig(ws string, o ConsumerOptions) jetstream.ConsumerConfig {
	md := o.MaxDeliver
	if md <= 0 {
		md = DefaultMaxDeliver
	}
	aw := o.AckWait
	if aw <= 0 {
		aw = DefaultAckWait
	}
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName(ws),
		Description:   "patchd: the runner of workspace " + ws,
		FilterSubject: WorkSubject(ws),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1,
		AckWait:       aw,
		MaxDeliver:    md,
		// AckWait is also how long a runner that died holding a message
		// keeps it; the standby takes over no later than that message
		// comes again.
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroup},
		PinnedTTL:      aw,
	}
}

// EnsureConsumer creates or updates the durable consumer of a workspace's
// patches (ConsumerConfig). The gateway and the runner may both call it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, ws string, o ConsumerOptions) (jetstream.Consumer, error) {
	if err := CheckWorkspace(ws); err != nil {
		return nil, err
	}
	c, err := js.CreateOrUpdateConsumer(ctx, StreamWork, ConsumerConfig(ws, o))
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s of stream %s: %w", ConsumerName(ws), StreamWork, err)
	}
	return c, nil
}
