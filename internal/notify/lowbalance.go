package notify

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/easel/easel/internal/store"
)

// DefaultLowBalanceThreshold is the available balance under which a user is
// told they are running out of credits.
const DefaultLowBalanceThreshold = 10

// LowBalance sends one notice each time a user's available balance crosses
// under the threshold: after a notice it stays quiet until the balance has
// been seen at or above the threshold again (Observe / AfterHold re-arm it).
// The claim is atomic in the database, so concurrent settles send once.
type LowBalance struct {
	Store     *store.Store
	Sender    Sender
	Threshold int // 0: DefaultLowBalanceThreshold
	Log       *slog.Logger
}

// EffectiveThreshold is the balance under which a user is told: Threshold,
// or DefaultLowBalanceThreshold when unset.
func (l *LowBalance) EffectiveThreshold() int {
	if l.Threshold > 0 {
		return l.Threshold
	}
	return DefaultLowBalanceThreshold
}

// AfterSettle checks the user's balance after a settle and, on a new
// crossing, records and sends the notice. claimed is the notice this call
// claimed (and sent, or tried to send), nil when there was none to send;
// the caller tells the user's webhooks about it too. A failed delivery is
// recorded on the notice and returned with it; the claim stands, so it is
// not sent twice.
func (l *LowBalance) AfterSettle(ctx context.Context, userID string) (claimed *store.UserNotice, err error) {
	b, err := l.Store.Balance(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("low-balance check: %w", err)
	}
	if b.Available >= l.EffectiveThreshold() {
		return nil, l.Store.RearmLowBalanceNotice(ctx, userID)
	}
	n, ok, err := l.Store.ClaimLowBalanceNotice(ctx, userID, b.Available)
	if err != nil || !ok {
		return nil, err
	}
	sendErr := l.Sender.Send(ctx, Notice{To: n.Email, Kind: store.NoticeLowBalance,
		Subject: "Your Easel credits are running low",
		Body: fmt.Sprintf("You have %d credits left to spend. Generations that cost more will be refused "+
			"until you add credits or your plan renews.\n", b.Available)})
	if err := l.Store.MarkNoticeSent(ctx, n.ID, sendErr); err != nil && l.Log != nil {
		l.Log.WarnContext(ctx, "record notice outcome", "notice_id", n.ID, "err", err)
	}
	if sendErr != nil {
		return &n, fmt.Errorf("low-balance notice %s: %w", n.ID, sendErr)
	}
	return &n, nil
}

// AfterHold re-arms the notice if the balance was at or above the threshold
// just before a hold of held credits (now available + held): that is the
// last time the balance was seen high before it dropped, and it catches a
// grant that lifted the balance between two low episodes.
func (l *LowBalance) AfterHold(ctx context.Context, userID string, held int) error {
	b, err := l.Store.Balance(ctx, userID)
	if err != nil {
		return fmt.Errorf("low-balance check: %w", err)
	}
	if b.Available+held >= l.EffectiveThreshold() {
		return l.Store.RearmLowBalanceNotice(ctx, userID)
	}
	return nil
}

// Observe re-arms the notice if the balance is now at or above the
// threshold. Call it after anything that raises a balance: a release, a grant.
func (l *LowBalance) Observe(ctx context.Context, userID string) error {
	b, err := l.Store.Balance(ctx, userID)
	if err != nil {
		return fmt.Errorf("low-balance check: %w", err)
	}
	if b.Available >= l.EffectiveThreshold() {
		return l.Store.RearmLowBalanceNotice(ctx, userID)
	}
	return nil
}
