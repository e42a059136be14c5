package image

import (
	"fmt"
	"regexp"
	"sync"
)

// tagRE is the OCI distribution spec's tag grammar, which is also what
// skopeo's oci: transport accepts in a reference.
// Compiled on first use: every underhood process would pay for it at
// start-up otherwise (inittrace).
var tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`) })

func checkTag(tag string) error {
	if !tagRE().MatchString(tag) {
		return fmt.Errorf("image tag %q: use letters, digits, '_', '.' or '-', at most 128, not starting with '.' or '-'", tag)
	}
	return nil
}
