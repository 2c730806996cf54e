package autoscale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"
)

// AutoScalingAPI is the part of the EC2 Auto Scaling client the driver uses.
type AutoScalingAPI interface {
	SetDesiredCapacity(ctx context.Context, in *autoscaling.SetDesiredCapacityInput, optFns ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error)
	DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	DescribeWarmPool(ctx context.Context, in *autoscaling.DescribeWarmPoolInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeWarmPoolOutput, error)
	PutWarmPool(ctx context.Context, in *autoscaling.PutWarmPoolInput, optFns ...func(*autoscaling.Options)) (*autoscaling.PutWarmPoolOutput, error)
	SetInstanceProtection(ctx context.Context, in *autoscaling.SetInstanceProtectionInput, optFns ...func(*autoscaling.Options)) (*autoscaling.SetInstanceProtectionOutput, error)
	DescribeScalingActivities(ctx context.Context, in *autoscaling.DescribeScalingActivitiesInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeScalingActivitiesOutput, error)
}

// HostActivity says what a tier's hosts render, by EC2 instance id. A host
// missing from the map has no GPU worker up yet: it is still booting.
type HostActivity interface {
	Hosts(ctx context.Context, tier string) (map[string]HostState, error)
}

// HostState is one host's GPU worker as HostActivity sees it.
type HostState struct {
	BusyGPUs  int
	IdleSince time.Time // when it last rendered, or started; zero while busy
	Started   time.Time // when its worker started
}

// EC2 drives a tier's EC2 Auto Scaling groups: Groups, on-demand with a
// warm pool, which SetCapacity sizes, and SpotGroups, spot only with no
// warm pool (EC2 refuses one on a group that requests spot instances),
// which SetSpotCapacity sizes. Spot falls back to on-demand through the
// policy: Fleet reports a spot group that EC2 refused capacity as
// SpotShort, and the policy raises the on-demand group to cover it.
//
// With Activity, Fleet reports the booting and idle instances and the
// busy GPUs, and keeps each in-service instance's scale-in protection in
// step with whether it renders, so the groups remove idle hosts only.
// Without it, Fleet is not offered (the driver is a plain Driver).
type EC2 struct {
	API        AutoScalingAPI
	Groups     map[string]string // tier -> on-demand Auto Scaling group
	SpotGroups map[string]string // tier -> spot Auto Scaling group
	Activity   HostActivity
	Now        func() time.Time // default time.Now
}

// NewEC2 builds the driver from an AWS config (region, credentials);
// optFns can point the client elsewhere, e.g. BaseEndpoint in tests.
func NewEC2(cfg aws.Config, groups map[string]string, optFns ...func(*autoscaling.Options)) *EC2 {
	return &EC2{API: autoscaling.NewFromConfig(cfg, optFns...), Groups: groups}
}

func (e *EC2) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *EC2) group(tier string) (string, error) {
	name := e.Groups[tier]
	if name == "" {
		return "", nonRetryable(ErrUnknownTier, fmt.Errorf("no Auto Scaling group configured for tier %q", tier))
	}
	return name, nil
}

func (e *EC2) spotGroup(tier string) (string, error) {
	name := e.SpotGroups[tier]
	if name == "" {
		return "", nonRetryable(ErrUnknownTier, fmt.Errorf("no spot Auto Scaling group configured for tier %q", tier))
	}
	return name, nil
}

// describe reads groups by name; a name that does not exist is an error
// retrying cannot fix.
func (e *EC2) describe(ctx context.Context, tier string, names ...string) (map[string]types.AutoScalingGroup, error) {
	out, err := e.API.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: names})
	if err != nil {
		return nil, fmt.Errorf("describe auto scaling groups %s: %w", strings.Join(names, ", "), err)
	}
	groups := map[string]types.AutoScalingGroup{}
	for _, g := range out.AutoScalingGroups {
		groups[aws.ToString(g.AutoScalingGroupName)] = g
	}
	for _, name := range names {
		if _, ok := groups[name]; !ok {
			return nil, nonRetryable(ErrUnknownTier, fmt.Errorf("auto scaling group %s of tier %s does not exist", name, tier))
		}
	}
	return groups, nil
}

// Capacity is the on-demand group's desired capacity (booting instances
// count).
func (e *EC2) Capacity(ctx context.Context, tier string) (int, error) {
	name, err := e.group(tier)
	if err != nil {
		return 0, err
	}
	groups, err := e.describe(ctx, tier, name)
	if err != nil {
		return 0, err
	}
	return int(aws.ToInt32(groups[name].DesiredCapacity)), nil
}

// SetCapacity sets the on-demand group's desired capacity. HonorCooldown
// is false: the autoscaler workflow keeps its own cooldowns, and the
// group's would silently drop a change the workflow then believes was made.
func (e *EC2) SetCapacity(ctx context.Context, tier string, n int) error {
	name, err := e.group(tier)
	if err != nil {
		return err
	}
	return e.setDesired(ctx, name, n)
}

// SetSpotCapacity sets the spot group's desired capacity.
func (e *EC2) SetSpotCapacity(ctx context.Context, tier string, n int) error {
	name, err := e.spotGroup(tier)
	if err != nil {
		return err
	}
	return e.setDesired(ctx, name, n)
}

func (e *EC2) setDesired(ctx context.Context, name string, n int) error {
	_, err := e.API.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String(name),
		DesiredCapacity:      aws.Int32(int32(n)),
		HonorCooldown:        aws.Bool(false),
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" {
		// Outside the group's own min/max: only a config change fixes it.
		return nonRetryable(ErrInvalidCapacity, fmt.Errorf("set desired capacity of %s to %d: %w", name, n, err))
	}
	if err != nil {
		return fmt.Errorf("set desired capacity of %s to %d: %w", name, n, err)
	}
	return nil
}

// ReportsFleet says whether Fleet can report: only with a HostActivity.
func (e *EC2) ReportsFleet() bool { return e.Activity != nil }

// Fleet reads the tier's groups and its hosts' activity, and protects
// busy in-service instances from scale-in (and unprotects idle ones), so
// that a lower desired capacity stops an idle host, never a rendering one.
func (e *EC2) Fleet(ctx context.Context, tier string) (Fleet, error) {
	if e.Activity == nil {
		return Fleet{}, errors.New("the EC2 driver has no host activity source: it reports no fleet")
	}
	name, err := e.group(tier)
	if err != nil {
		return Fleet{}, err
	}
	names := []string{name}
	spotName := e.SpotGroups[tier]
	if spotName != "" {
		names = append(names, spotName)
	}
	groups, err := e.describe(ctx, tier, names...)
	if err != nil {
		return Fleet{}, err
	}
	hosts, err := e.Activity.Hosts(ctx, tier)
	if err != nil {
		return Fleet{}, fmt.Errorf("read host activity of tier %s: %w", tier, err)
	}
	f := Fleet{Capacity: int(aws.ToInt32(groups[name].DesiredCapacity))}
	if err := e.tally(ctx, &f, tier, groups[name], hosts, false); err != nil {
		return Fleet{}, err
	}
	if spotName != "" {
		g := groups[spotName]
		f.Spot = int(aws.ToInt32(g.DesiredCapacity))
		if err := e.tally(ctx, &f, tier, g, hosts, true); err != nil {
			return Fleet{}, err
		}
		if f.SpotShort, err = e.spotShort(ctx, g); err != nil {
			return Fleet{}, err
		}
	}
	return f, nil
}

// tally adds a group's instances to the fleet: pending ones, and
// in-service ones whose worker has not reported yet, boot; the others are
// busy or idle. It sets each in-service instance's scale-in protection.
func (e *EC2) tally(ctx context.Context, f *Fleet, tier string, g types.AutoScalingGroup, hosts map[string]HostState, spot bool) error {
	now := e.now()
	// A worker holds one task more than its GPUs: count GPUs, not slots.
	gpus := max(TierSpecs[tier].GPUs, 1)
	var protect, unprotect []string
	for _, in := range g.Instances {
		id, state := aws.ToString(in.InstanceId), string(in.LifecycleState)
		if !live(state) {
			continue
		}
		h, up := hosts[id]
		if !up || strings.HasPrefix(state, "Pending") {
			f.Booting++
			if spot {
				f.SpotBooting++
			}
			continue
		}
		protected := aws.ToBool(in.ProtectedFromScaleIn)
		if h.BusyGPUs > 0 {
			f.BusyGPUs += min(h.BusyGPUs, gpus)
			if !protected {
				protect = append(protect, id)
			}
			continue
		}
		f.Idle = append(f.Idle, IdleInstance{IdleFor: now.Sub(h.IdleSince), Uptime: now.Sub(h.Started), Spot: spot})
		if protected {
			unprotect = append(unprotect, id)
		}
	}
	name := aws.ToString(g.AutoScalingGroupName)
	if err := e.protect(ctx, name, protect, true); err != nil {
		return err
	}
	return e.protect(ctx, name, unprotect, false)
}

// live says whether an instance in this lifecycle state serves or will:
// pending and in service, not terminating, detaching, on standby or
// leaving for the warm pool.
func live(state string) bool {
	return state == string(types.LifecycleStateInService) || strings.HasPrefix(state, "Pending")
}

// protectBatch is SetInstanceProtection's limit of instances per call.
const protectBatch = 50

func (e *EC2) protect(ctx context.Context, group string, ids []string, on bool) error {
	for len(ids) > 0 {
		n := min(len(ids), protectBatch)
		_, err := e.API.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{
			AutoScalingGroupName: aws.String(group), InstanceIds: ids[:n], ProtectedFromScaleIn: aws.Bool(on)})
		if err != nil {
			return fmt.Errorf("set scale-in protection %t on %d instances of %s: %w", on, n, group, err)
		}
		ids = ids[n:]
	}
	return nil
}

// spotRefusalMessages are the status messages of a launch EC2 refused for want
// of spot capacity (or a spot limit or price), as scaling activities
// report them.
var spotRefusalMessages = []string{"InsufficientInstanceCapacity", "insufficient capacity", "no Spot capacity",
	"capacity-not-available", "MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow"}

// spotShort is how many of the spot group's desired instances are
// missing because its latest scaling activity failed for want of spot
// capacity; 0 when the latest one did not fail so.
func (e *EC2) spotShort(ctx context.Context, g types.AutoScalingGroup) (int, error) {
	name := aws.ToString(g.AutoScalingGroupName)
	missing := int(aws.ToInt32(g.DesiredCapacity))
	for _, in := range g.Instances {
		if live(string(in.LifecycleState)) {
			missing--
		}
	}
	if missing <= 0 {
		return 0, nil
	}
	out, err := e.API.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{
		AutoScalingGroupName: aws.String(name), MaxRecords: aws.Int32(1)})
	if err != nil {
		return 0, fmt.Errorf("describe scaling activities of %s: %w", name, err)
	}
	if len(out.Activities) == 0 {
		return 0, nil
	}
	a := out.Activities[0] // newest first
	if a.StatusCode != types.ScalingActivityStatusCodeFailed || !refused(aws.ToString(a.StatusMessage)) {
		return 0, nil
	}
	return missing, nil
}

func refused(message string) bool {
	for _, r := range spotRefusalMessages {
		if strings.Contains(strings.ToLower(message), strings.ToLower(r)) {
			return true
		}
	}
	return false
}

// WarmPoolStatus is a tier's warm pool after EnsureWarmPool.
type WarmPoolStatus struct {
	Prepared int  // MaxGroupPreparedCapacity
	Warm     int  // instances in the pool now
	Changed  bool // PutWarmPool was called
}

// EnsureWarmPool gives the tier's on-demand group a warm pool of stopped
// instances, prepared instances in all (MaxGroupPreparedCapacity), reused
// on scale-in, unless it has that pool already. The autoscaler workflow
// calls it at the start of each run and after a configuration change.
func (e *EC2) EnsureWarmPool(ctx context.Context, tier string, prepared int) (WarmPoolStatus, error) {
	name, err := e.group(tier)
	if err != nil {
		return WarmPoolStatus{}, err
	}
	out, err := e.API.DescribeWarmPool(ctx, &autoscaling.DescribeWarmPoolInput{AutoScalingGroupName: aws.String(name)})
	if err != nil {
		return WarmPoolStatus{}, fmt.Errorf("describe warm pool of %s: %w", name, err)
	}
	st := WarmPoolStatus{Prepared: prepared, Warm: len(out.Instances)}
	if c := out.WarmPoolConfiguration; c != nil && int(aws.ToInt32(c.MaxGroupPreparedCapacity)) == prepared &&
		aws.ToInt32(c.MinSize) == 0 && c.PoolState == types.WarmPoolStateStopped &&
		c.InstanceReusePolicy != nil && aws.ToBool(c.InstanceReusePolicy.ReuseOnScaleIn) {
		return st, nil
	}
	_, err = e.API.PutWarmPool(ctx, &autoscaling.PutWarmPoolInput{
		AutoScalingGroupName:     aws.String(name),
		MaxGroupPreparedCapacity: aws.Int32(int32(prepared)),
		MinSize:                  aws.Int32(0),
		PoolState:                types.WarmPoolStateStopped,
		InstanceReusePolicy:      &types.InstanceReusePolicy{ReuseOnScaleIn: aws.Bool(true)},
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" {
		// E.g. a group with a mixed instances policy or spot instances.
		return st, nonRetryable(ErrInvalidCapacity, fmt.Errorf("put warm pool of %s: %w", name, err))
	}
	if err != nil {
		return st, fmt.Errorf("put warm pool of %s: %w", name, err)
	}
	st.Changed = true
	return st, nil
}
