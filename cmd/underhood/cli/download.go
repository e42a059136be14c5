package cli

import (
	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/busybox"
	"github.com/underhood/underhood/lab/ui"
	"github.com/underhood/underhood/steps"
)

// NewCmdDownload makes the download command.
func NewCmdDownload(g *globals, s *steps.Step) *cobra.Command {
	var opt steps.DownloadOptions
	c := &cobra.Command{
		Use: "download",
		Long: `Download the pinned static BusyBox ` + busybox.DefaultVersion + ` for x86_64 from busybox.net into the work
directory, check its SHA-256, and run it once: busybox echo Hello from BusyBox!

Without network, or on aarch64, use a distribution's static BusyBox:
  sudo apt-get install busybox-static
  sudo underhood download --from /bin/busybox
If the download fails and such a BusyBox is installed, underhood says so and
uses it, unless --no-fallback. A download whose SHA-256 is wrong is never
replaced by it unless --fallback-on-mismatch.`,
		Example: `  sudo underhood download
  sudo underhood download --from /bin/busybox
  sudo underhood download --url https://example.org/busybox --sha256 <64 hex digits>`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// An empty value is a mistake (an unset shell variable), not a
			// request for the default.
			for _, f := range []struct{ name, want string }{
				{"from", "the path of a local static BusyBox, e.g. /bin/busybox"},
				{"url", "an http:// or https:// URL"},
				{"sha256", "64 hex digits"},
			} {
				if v, _ := cmd.Flags().GetString(f.name); cmd.Flags().Changed(f.name) && v == "" {
					return ui.Usagef("--%s \"\": give %s, or leave the flag out", f.name, f.want)
				}
			}
			return steps.Download(cmd.Context(), g.io, g.workdir, opt)
		},
	}
	f := c.Flags()
	f.StringVar(&opt.URL, "url", "", "download BusyBox from this http(s) URL instead (needs --sha256)")
	f.StringVar(&opt.SHA256, "sha256", "", "the SHA-256 that the --url download must have, in hex")
	f.StringVar(&opt.From, "from", "", "copy this local static BusyBox instead of downloading, e.g. /bin/busybox")
	f.BoolVar(&opt.NoFallback, "no-fallback", false, "if the download fails, fail rather than use a static BusyBox installed on this machine")
	f.BoolVar(&opt.FallbackOnMismatch, "fallback-on-mismatch", false, "if the download's SHA-256 is wrong, use a static BusyBox installed on this machine instead of failing")
	return stepCommand(g, s, c)
}
