package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes that make every run findable in Temporal UI: a
// generation by user, tier and plan, a subscription by user and plan.
var (
	SearchUserID  = temporal.NewSearchAttributeKeyKeyword("UserId")
	SearchGPUTier = temporal.NewSearchAttributeKeyKeyword("GpuTier")
	SearchPlan    = temporal.NewSearchAttributeKeyKeyword("Plan")
)

// SearchAttributes lists them for server registration.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	SearchUserID.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchGPUTier.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchPlan.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}
