package image

import (
	"fmt"
	"regexp"
)

// tagRE is the OCI distribution spec's tag grammar, which is also what
// skopeo's oci: transport accepts in a reference.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func checkTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("image tag %q: use letters, digits, '_', '.' or '-', at most 128, not starting with '.' or '-'", tag)
	}
	return nil
}
