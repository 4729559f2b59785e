// Package sockstat reads what the kernel knows of the tracker's own
// sockets and the tracker cannot see from inside: datagrams dropped at a
// UDP socket's full receive buffer. Those are the figure that tells a UDP
// tracker's operator it needs more cores (or a bigger buffer): the tracker
// never saw the requests, so no counter of its own can count them.
//
// On Linux the drops are the last column of /proc/net/udp and
// /proc/net/udp6 (the kernel's sk_drops), on the line of the socket's
// inode. Elsewhere they read as zero.
package sockstat

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
)

// Inode is the inode number of a socket, which names it in /proc/net; 0
// if it cannot be read.
func Inode(c syscall.Conn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var ino uint64
	rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(fd), &st) == nil {
			ino = uint64(st.Ino)
		}
	})
	return ino
}

// UDPDrops returns a function that adds up, each time it is called, the
// datagrams the kernel has dropped at these sockets since they were made.
func UDPDrops(conns []*net.UDPConn) func() uint64 {
	inodes := map[uint64]bool{}
	for _, c := range conns {
		if ino := Inode(c); ino != 0 {
			inodes[ino] = true
		}
	}
	return func() uint64 {
		var total uint64
		for _, path := range []string{"/proc/net/udp", "/proc/net/udp6"} {
			f, err := os.Open(path)
			if err != nil {
				continue
			}
			total += dropsIn(f, inodes)
			f.Close()
		}
		return total
	}
}

// dropsIn reads a /proc/net/udp table and adds up the drops of the sockets
// whose inodes are given. Its lines are
//
//	sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
//
// after a heading line.
func dropsIn(r io.Reader, inodes map[uint64]bool) uint64 {
	var total uint64
	sc := bufio.NewScanner(r)
	sc.Scan() // the heading
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 13 {
			continue
		}
		ino, err := strconv.ParseUint(string(fields[9]), 10, 64)
		if err != nil || !inodes[ino] {
			continue
		}
		if drops, err := strconv.ParseUint(string(fields[len(fields)-1]), 10, 64); err == nil {
			total += drops
		}
	}
	return total
}
