package autoscale

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/smithy-go"
)

// AutoScalingAPI is the part of the EC2 Auto Scaling client the driver uses.
type AutoScalingAPI interface {
	SetDesiredCapacity(ctx context.Context, in *autoscaling.SetDesiredCapacityInput, optFns ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error)
	DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
}

// EC2 drives one EC2 Auto Scaling group per tier.
type EC2 struct {
	API    AutoScalingAPI
	Groups map[string]string // tier -> Auto Scaling group name
}

// NewEC2 builds the driver from an AWS config (region, credentials);
// optFns can point the client elsewhere, e.g. BaseEndpoint in tests.
func NewEC2(cfg aws.Config, groups map[string]string, optFns ...func(*autoscaling.Options)) *EC2 {
	return &EC2{API: autoscaling.NewFromConfig(cfg, optFns...), Groups: groups}
}

func (e *EC2) group(tier string) (string, error) {
	name := e.Groups[tier]
	if name == "" {
		return "", nonRetryable(ErrUnknownTier, fmt.Errorf("no Auto Scaling group configured for tier %q", tier))
	}
	return name, nil
}

// Capacity is the group's desired capacity (instances still booting count).
func (e *EC2) Capacity(ctx context.Context, tier string) (int, error) {
	name, err := e.group(tier)
	if err != nil {
		return 0, err
	}
	out, err := e.API.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return 0, fmt.Errorf("describe auto scaling group %s: %w", name, err)
	}
	for _, g := range out.AutoScalingGroups {
		if aws.ToString(g.AutoScalingGroupName) == name {
			return int(aws.ToInt32(g.DesiredCapacity)), nil
		}
	}
	return 0, nonRetryable(ErrUnknownTier, fmt.Errorf("auto scaling group %s of tier %s does not exist", name, tier))
}

// SetCapacity sets the group's desired capacity. HonorCooldown is false:
// the autoscaler workflow keeps its own cooldowns, and the group's would
// silently drop a change the workflow then believes was made.
func (e *EC2) SetCapacity(ctx context.Context, tier string, n int) error {
	name, err := e.group(tier)
	if err != nil {
		return err
	}
	_, err = e.API.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
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
