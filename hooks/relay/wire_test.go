package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	req := &Request{Hook: "pre-receive", Args: []string{"a"}, Repo: "/data/repos/app.git", Token: "t",
		PushOptions: []string{"follow"}, Quarantine: map[string]string{"GIT_OBJECT_DIRECTORY": "/q"}, Stdin: []byte("x y z\n")}
	var buf bytes.Buffer
	if err := WriteRequest(&buf, req); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRequest(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("got %+v, want %+v", got, req)
	}
}

func TestResponseStreamsOutputThenExit(t *testing.T) {
	var buf bytes.Buffer
	w := OutputWriter{W: &buf}
	big := bytes.Repeat([]byte("x"), 200<<10) // split into several frames
	if n, err := w.Write(big); err != nil || n != len(big) {
		t.Fatalf("write: %d, %v", n, err)
	}
	w.Write([]byte("done\n"))
	WriteExit(&buf, 3)
	var out bytes.Buffer
	code, err := ReadResponse(&buf, &out)
	if err != nil || code != 3 {
		t.Fatalf("code %d, err %v", code, err)
	}
	if out.Len() != len(big)+5 {
		t.Fatalf("output %d bytes, want %d", out.Len(), len(big)+5)
	}
}

func TestReadFrameRefusesHugeLength(t *testing.T) {
	var hdr [5]byte
	hdr[0] = frameRequest
	binary.BigEndian.PutUint32(hdr[1:], MaxFrame+1)
	if _, err := ReadRequest(bytes.NewReader(hdr[:])); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}

func TestResponseWithoutVerdictIsAnError(t *testing.T) {
	var buf bytes.Buffer
	OutputWriter{W: &buf}.Write([]byte("partial"))
	if _, err := ReadResponse(&buf, &bytes.Buffer{}); err == nil {
		t.Fatal("a closed connection without an exit frame was taken as success")
	}
}

// FuzzWire feeds arbitrary bytes to both readers: they must never panic
// nor allocate beyond MaxFrame, and whatever parses must re-encode.
func FuzzWire(f *testing.F) {
	var buf bytes.Buffer
	WriteRequest(&buf, &Request{Hook: "pre-receive", Repo: "/r", Stdin: []byte("a b c\n")})
	f.Add(buf.Bytes())
	buf.Reset()
	OutputWriter{W: &buf}.Write([]byte("out"))
	WriteExit(&buf, 1)
	f.Add(buf.Bytes())
	f.Add([]byte{'q', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		if req, err := ReadRequest(bytes.NewReader(data)); err == nil {
			var b bytes.Buffer
			if err := WriteRequest(&b, req); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			again, err := ReadRequest(&b)
			if err != nil || again.Hook != req.Hook || again.Repo != req.Repo || !bytes.Equal(again.Stdin, req.Stdin) {
				t.Fatalf("round trip changed the request: %+v vs %+v (%v)", again, req, err)
			}
		}
		ReadResponse(bytes.NewReader(data), &bytes.Buffer{})
	})
}
