// Command underhood-init is the first process of underhood's containers:
// underhood starts it in the new namespaces, it sets up the mounts, the
// hostname and the root, and execs the payload (lab/ns Init). It holds
// nothing else, so that it starts in a fraction of underhood's time; make
// build puts it beside underhood, which looks for it there.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/underhood/underhood/lab/ns"
)

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == ns.InitArg:
		ns.Init() // never returns
	case len(os.Args) > 1 && strings.HasPrefix(os.Args[1], ns.InitArgPrefix):
		fmt.Fprintf(os.Stderr, "underhood-init: underhood sent %s, this build knows %s: build both again (make build) so that they match\n", os.Args[1], ns.InitArg)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "underhood-init is the first process of underhood's containers: underhood starts it, not a person (try: sudo underhood run)")
	os.Exit(2)
}
