package costmodel

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

func fmtf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// Write prints the report as tables.
func (r Report) Write(w io.Writer) error {
	var b bytes.Buffer
	r.writeScenario(&b)
	r.writeLines(&b)
	r.writeTiers(&b)
	r.writeUnitCosts(&b)
	r.writeMargins(&b)
	r.writeSavings(&b)
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	if _, err := io.WriteString(w, strings.Join(lines, "\n")); err != nil {
		return fmt.Errorf("write cost report: %w", err)
	}
	return nil
}

func (r Report) writeScenario(b *bytes.Buffer) {
	in := r.Inputs
	fmt.Fprintf(b, "scenario: %d daily active users x %g images = %s images/day, %s/month (%g days)\n",
		in.DAU, in.ImagesPerUserDay, count(r.ImagesPerDay), count(r.ImagesPerMonth), in.DaysPerMonth)
	fmt.Fprintf(b, "tiers %s; models %s; %.2f credits/image\n", shares(in.TierMix, Tiers), shares(in.ModelMix, Models), r.CreditsPerImage)
	fmt.Fprintf(b, "utilisation target %.0f%%; min instances %s; night scale-down %dh from %02d:00; spot %.0f%% of GPU hours at %.0f%% off\n\n",
		in.Utilisation*100, ints(in.MinInstances), in.NightHours, in.NightStart, in.SpotShare*100, in.SpotDiscount*100)
}

func (r Report) writeLines(b *bytes.Buffer) {
	b.WriteString("Monthly cost by line item\n")
	tw := table(b)
	fmt.Fprintf(tw, "item\tspec\tguide\tmodel\tsource\n")
	guideRows := true
	for _, l := range r.Lines {
		if guideRows && !l.InGuide {
			fmt.Fprintf(tw, "deployment guide's lines\t\t%s\t%s\t%+.1f%% vs the deployment guide's total\n", usd(r.GuideTableUSD), usd(r.GuideLinesUSD), r.Deviation()*100)
			fmt.Fprintf(tw, "not in the deployment guide's table:\t\t\t\t\n")
			guideRows = false
		}
		guideUSD := "-"
		if l.InGuide {
			guideUSD = usd(l.GuideUSD)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Item, l.Spec, guideUSD, usd(l.USD), l.Source)
	}
	if guideRows {
		fmt.Fprintf(tw, "deployment guide's lines\t\t%s\t%s\t%+.1f%% vs the deployment guide's total\n", usd(r.GuideTableUSD), usd(r.GuideLinesUSD), r.Deviation()*100)
	}
	fmt.Fprintf(tw, "total\t\t\t%s\tGPU %s (%.0f%%)\n", usd(r.TotalUSD), usd(r.GPUUSD), pct(r.GPUUSD, r.TotalUSD))
	flush(tw, b)
}

func (r Report) writeTiers(b *bytes.Buffer) {
	b.WriteString("GPU tiers (per month)\n")
	tw := table(b)
	fmt.Fprintf(tw, "tier\tinstance\t$/h on-demand\t$/h spot\timages\ts/image\tbusy GPU-h\tinstance-h\tutilisation\ton-demand\tspot\tbilled\n")
	for _, t := range r.Tiers {
		fmt.Fprintf(tw, "%s\t%s x%d GPU\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.0f%%\t%s\t%s\t%s\n", t.Tier, t.Instance, t.GPUs,
			usd3(t.OnDemandHourly), usd3(t.SpotHourly), count(t.Images), t.SecondsPerImage, t.BusyGPUHours, t.InstanceHours,
			t.Utilisation*100, usd(t.OnDemandUSD), usd(t.SpotUSD), usd(t.USD))
	}
	flush(tw, b)
}

func (r Report) writeUnitCosts(b *bytes.Buffer) {
	fmt.Fprintf(b, "Cost per 1,000 images at %.0f%% utilisation (GPU only)\n", r.Inputs.Utilisation*100)
	cols := append(slices.Clone(Models), Mix)
	tw := table(b)
	fmt.Fprintf(tw, "tier\tprice\t%s\tthis scenario\n", strings.Join(cols, "\t"))
	for _, u := range r.UnitCosts {
		for _, kind := range []string{"on-demand", "spot"} {
			v, scen := u.OnDemand, "-"
			if kind == "spot" {
				v = u.Spot
			} else if u.Scenario > 0 {
				scen = usd(u.Scenario)
			}
			cells := make([]string, len(cols))
			for i, c := range cols {
				cells[i] = "-"
				if x, ok := v[c]; ok {
					cells[i] = usd(x)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Tier, kind, strings.Join(cells, "\t"), scen)
		}
	}
	flush(tw, b)
}

func (r Report) writeMargins(b *bytes.Buffer) {
	fmt.Fprintf(b, "Plan margin when all monthly credits are spent (model mix, %.2f credits/image; GPU only)\n", r.CreditsPerImage)
	tw := table(b)
	fmt.Fprintf(tw, "plan\tprice\tcredits\ttier\timages\tGPU on-demand\tmargin\tGPU spot\tmargin\n")
	for _, m := range r.Margins {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s (%s)\t%s\t%s (%s)\n", m.Plan, usd(m.PriceUSD), m.Credits, m.Tier, count(m.Images),
			usd(m.GPUOnDemandUSD), usd(m.MarginOnDemandUSD), share(m.MarginOnDemandUSD, m.PriceUSD),
			usd(m.GPUSpotUSD), usd(m.MarginSpotUSD), share(m.MarginSpotUSD, m.PriceUSD))
	}
	_ = tw.Flush() // a bytes.Buffer does not fail
	fixed := r.FixedUSD
	var parts []string
	for _, m := range r.Margins {
		if m.MarginOnDemandUSD > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", count(math.Ceil(fixed/m.MarginOnDemandUSD)), m.Plan))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "the non-GPU bill (%s) is covered by the on-demand margin of %s subscribers\n", usd(fixed), strings.Join(parts, ", or "))
	}
	b.WriteString("\n")
}

func (r Report) writeSavings(b *bytes.Buffer) {
	b.WriteString("Savings on the GPU bill\n")
	tw := table(b)
	fmt.Fprintf(tw, "variant\tGPU\ttotal\tsaved\timages waiting for morning\n")
	for _, s := range r.Savings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%.0f%%)\t%.1f%%\n", s.Label, usd(s.GPUUSD), usd(s.TotalUSD), usd(s.SavedUSD), s.SavedFraction*100, s.Deferred*100)
	}
	_ = tw.Flush() // a bytes.Buffer does not fail
}

func table(b *bytes.Buffer) *tabwriter.Writer {
	return tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
}

func flush(tw *tabwriter.Writer, b *bytes.Buffer) {
	_ = tw.Flush() // a bytes.Buffer does not fail
	b.WriteString("\n")
}

// usd prints dollars with thousands separators and cents.
func usd(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	s := fmt.Sprintf("%.2f", v)
	whole, cents, _ := strings.Cut(s, ".")
	return sign + "$" + thousands(whole) + "." + cents
}

func usd3(v float64) string { return fmt.Sprintf("$%.3f", v) }

func count(v float64) string { return thousands(fmt.Sprintf("%.0f", v)) }

func thousands(digits string) string {
	var out []byte
	for i := range len(digits) {
		if i > 0 && (len(digits)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, digits[i])
	}
	return string(out)
}

func pct(part, whole float64) float64 {
	if whole == 0 {
		return 0
	}
	return part / whole * 100
}

func share(part, whole float64) string {
	if whole == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", part/whole*100)
}

// shares prints a mix in the given order, then any other keys sorted.
func shares(m map[string]float64, order []string) string {
	var parts []string
	for _, k := range orderedKeys(m, order) {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, m[k]*100))
	}
	return strings.Join(parts, ", ")
}

func ints(m map[string]int) string {
	var parts []string
	for _, k := range orderedKeys(m, Tiers) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

func orderedKeys[V any](m map[string]V, order []string) []string {
	var keys []string
	for _, k := range order {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(order, k) {
			keys = append(keys, k)
		}
	}
	return keys
}
