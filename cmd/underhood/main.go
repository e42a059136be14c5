// Command underhood builds a Linux container by hand, one workshop step at a
// time.
package main

import (
	"os"

	"github.com/underhood/underhood/cmd/underhood/cli"
	"github.com/underhood/underhood/lab/ns"
)

func main() {
	// The re-exec'd container child runs before any CLI code: it is on the
	// path of every container start and must stay small.
	if len(os.Args) > 1 && os.Args[1] == ns.InitArg {
		ns.Init() // never returns
	}
	os.Exit(cli.Execute(os.Args[1:]))
}
