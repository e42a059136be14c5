package overlay

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Kind says why an overlay could not be mounted, so the caller can fall back
// to copying the root and tell the user why.
type Kind int

const (
	// Missing: the kernel has no overlayfs.
	Missing Kind = iota + 1
	// LowerFS: the lower directory's filesystem cannot be an overlay lower
	// (overlays stacked too deep, or a filesystem overlayfs refuses).
	LowerFS
	// UpperFS: the upper directory's filesystem cannot hold an upper layer
	// (no xattrs or d_type, or it is an overlay itself).
	UpperFS
	// Layout: the directories themselves are wrong (work not beside upper,
	// upper inside lower, a path with a comma or colon).
	Layout
	// Other: any other refusal, such as missing privileges.
	Other
)

func (k Kind) String() string {
	return [...]string{"", "overlayfs missing", "lower filesystem unsupported",
		"upper filesystem unsupported", "overlay directories unsuitable", "overlay refused"}[k]
}

// Error is an overlay that could not be mounted.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Kind.String() + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// fsName maps the statfs magics overlayfs cares about to a name for messages.
var fsName = map[int64]string{
	unix.OVERLAYFS_SUPER_MAGIC: "overlay", unix.TMPFS_MAGIC: "tmpfs",
	unix.EXT4_SUPER_MAGIC: "ext4", unix.XFS_SUPER_MAGIC: "xfs",
	unix.BTRFS_SUPER_MAGIC: "btrfs", unix.MSDOS_SUPER_MAGIC: "vfat",
	unix.NFS_SUPER_MAGIC: "nfs", unix.FUSE_SUPER_MAGIC: "fuse",
	unix.V9FS_MAGIC: "9p", unix.SQUASHFS_MAGIC: "squashfs",
}

// noUpper are filesystems overlayfs refuses as upper: no trusted xattrs, no
// d_type, or remote.
var noUpper = map[int64]bool{
	unix.OVERLAYFS_SUPER_MAGIC: true, unix.MSDOS_SUPER_MAGIC: true,
	unix.NFS_SUPER_MAGIC: true, unix.V9FS_MAGIC: true, unix.SQUASHFS_MAGIC: true,
}

func fsType(path string) (int64, string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, "", fmt.Errorf("statfs %s: %w", path, err)
	}
	if n, ok := fsName[int64(st.Type)]; ok {
		return int64(st.Type), n, nil
	}
	return int64(st.Type), fmt.Sprintf("0x%x", st.Type), nil
}
