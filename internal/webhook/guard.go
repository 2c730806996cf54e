package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// MaxURLBytes bounds a webhook URL.
const MaxURLBytes = 2048

// ErrForbiddenAddress is returned for a target Easel must not reach: the
// receiver of a customer's webhook is on the internet, never inside
// Easel's own network (server-side request forgery).
var ErrForbiddenAddress = errors.New("the address is not a public internet address")

// Guard decides which URLs and addresses webhooks may reach. Its zero value
// is production's: https only, public unicast addresses only.
type Guard struct {
	// AllowLocal also lets webhooks reach loopback addresses (127.0.0.0/8,
	// ::1, localhost) over plain http: for easel dev and the tests, whose
	// receivers listen on this machine. Every other refused class stays
	// refused.
	AllowLocal bool
}

// forbiddenPrefixes are the address blocks no webhook may reach, beyond
// what netip's predicates name (loopback, private, link-local, multicast,
// unspecified).
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: would reach any IPv4 address, private ones too
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// CheckAddr refuses an address outside the public internet: loopback
// (unless AllowLocal), private (RFC 1918, unique local fc00::/7),
// link-local (169.254.0.0/16 with the cloud metadata service, fe80::/10),
// unspecified, multicast, carrier-grade NAT and the reserved blocks.
// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
func (g Guard) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	var class string
	switch {
	case !a.IsValid():
		class = "invalid"
	case a.IsLoopback():
		if g.AllowLocal {
			return nil
		}
		class = "loopback"
	case a.IsPrivate():
		class = "private"
	case a.IsLinkLocalUnicast():
		class = "link-local"
	case a.IsUnspecified():
		class = "unspecified"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		class = "multicast"
	default:
		for _, p := range forbiddenPrefixes {
			if p.Contains(a) {
				class = "reserved (" + p.String() + ")"
				break
			}
		}
	}
	if class == "" {
		return nil
	}
	return fmt.Errorf("%s is %s: %w", a, class, ErrForbiddenAddress)
}

// CheckURL validates a webhook URL before it is stored: absolute http(s)
// (https only, unless AllowLocal), a host, no credentials, and, when the
// host is an IP literal or localhost, an address CheckAddr accepts. Names
// are resolved only when a webhook is sent, where the dialer checks the
// address it actually connects to (Control).
func (g Guard) CheckURL(raw string) error {
	if len(raw) > MaxURLBytes {
		return fmt.Errorf("must be at most %d bytes", MaxURLBytes)
	}
	if !utf8.ValidString(raw) || strings.ContainsAny(raw, " \t\r\n") {
		return errors.New("must be a URL without spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute http or https URL, like https://example.com/hooks/easel")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !g.AllowLocal {
			return errors.New("must use https")
		}
	default:
		return errors.New("must use https")
	}
	if u.User != nil {
		return errors.New("must not carry credentials (user:password@); put a token in the path or query instead")
	}
	if u.Fragment != "" {
		return errors.New("must not have a #fragment")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return errors.New("must name a host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %s must be a number from 1 to 65535", p)
		}
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if g.AllowLocal {
			return nil
		}
		return fmt.Errorf("%s is loopback: %w", host, ErrForbiddenAddress)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(a)
	}
	if numericLabel(host[strings.LastIndexByte(host, '.')+1:]) {
		// 2130706433, 0x7f.1, 017700000001: spellings of an IPv4 address
		// that some resolvers read as one. No DNS name ends in a numeric
		// label, so it is refused rather than looked up.
		return fmt.Errorf("%s is neither a host name nor an IP address in dotted form", host)
	}
	return nil
}

// numericLabel reports whether a DNS label is a number: decimal, or hex
// with 0x.
func numericLabel(l string) bool {
	digits := strings.TrimPrefix(l, "0x")
	if digits == "" {
		return l == "0x"
	}
	hex := len(digits) != len(l)
	for _, r := range digits {
		if !('0' <= r && r <= '9' || hex && 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// Control is a net.Dialer Control hook: it runs after the name is resolved,
// on the very address being connected to, so a name that resolves to a
// private address (or changes its answer between a check and the connect:
// DNS rebinding) is still refused.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" && network != "tcp" {
		return fmt.Errorf("webhook: network %s: %w", network, ErrForbiddenAddress)
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: %w", address, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: %w", address, err)
	}
	return g.CheckAddr(a)
}
