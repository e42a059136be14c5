package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/underhood/underhood/lab/container"
	"github.com/underhood/underhood/lab/state"
	"github.com/underhood/underhood/steps"
)

// Shell completion (underhood completion bash|zsh|fish): step numbers for
// check and step, the lab's run names for inspect and cleanup, directories
// for --workdir and --rootfs, files for --busybox and --from, levels for
// --isolation.
func addCompletion(g *globals, root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("workdir", dirs)
	for _, c := range root.Commands() {
		switch c.Name() {
		case "check", "step":
			c.ValidArgsFunction = stepNumbers
		case "inspect", "cleanup":
			c.ValidArgsFunction = runNames(g)
		}
		for _, f := range []string{"rootfs"} {
			if c.Flags().Lookup(f) != nil {
				_ = c.RegisterFlagCompletionFunc(f, dirs)
			}
		}
		if c.Flags().Lookup("net") != nil {
			_ = c.RegisterFlagCompletionFunc("net", cobra.FixedCompletions(steps.NetModes, cobra.ShellCompDirectiveNoFileComp))
		}
		if c.Flags().Lookup("isolation") != nil {
			_ = c.RegisterFlagCompletionFunc("isolation", isolations)
		}
		for _, f := range []string{"busybox", "from"} {
			if c.Flags().Lookup(f) != nil {
				_ = c.RegisterFlagCompletionFunc(f, files)
			}
		}
	}
}

// isolations offers --isolation's levels, with what each is.
func isolations(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{steps.IsolationArticle + "\tthe article's container (chroot, every capability)",
		steps.IsolationFull + "\tall of Part 2: pivot_root, runc's privileges, the task limit"}, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

func dirs(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

func files(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveDefault
}

// stepNumbers offers "3<TAB>Change the root directory" for each step.
func stepNumbers(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, s := range steps.All() {
		out = append(out, fmt.Sprintf("%d\t%s", s.N, s.Title))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// runNames offers the runs of the work directory given so far (or the
// default one), with what each is.
func runNames(g *globals) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		w, err := state.Resolve(g.workdirFlag)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		runs, _ := container.List(w)
		var out []string
		for _, r := range runs {
			if strings.HasPrefix(r.Name, prefix) {
				out = append(out, r.Name+"\t"+r.Kind)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
