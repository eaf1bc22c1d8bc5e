package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client talks to the holder of a database.
type Client struct {
	hc *http.Client
}

// Dial connects to the control socket at path. If no process answers
// there (no socket, or one left behind), the error is ErrNoHolder.
func Dial(path string) (*Client, error) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoHolder, err)
	}
	conn.Close()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	return &Client{hc: &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}}, nil
}

// Holder asks which process holds the database.
func (c *Client) Holder(ctx context.Context) (Holder, error) {
	var h Holder
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fluxwatch/v1/holder", nil)
	if err != nil {
		return h, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return h, fmt.Errorf("control: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("control: holder: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("control: holder: %w", err)
	}
	return h, nil
}

// Run carries out a command line in the holder: stdin (nil: none) is
// sent as the command reads it, its output is written to stdout and
// stderr as it comes. It returns the command's exit code and, for a
// failure, its error line; err is for the channel itself.
func (c *Client) Run(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) (code int, message string, err error) {
	pr, pw := io.Pipe()
	// An open standard input never holds up a cancelled run: the body
	// ends with the context, and the transport with it.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	defer stop()
	go func() {
		err := json.NewEncoder(pw).Encode(req)
		if err == nil && stdin != nil {
			_, err = io.Copy(pw, stdin)
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://fluxwatch/v1/run", pr)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return 0, "", fmt.Errorf("control: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, "", fmt.Errorf("control: %s: %s", resp.Status, b)
	}
	for {
		kind, p, err := readFrame(resp.Body)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("the holder stopped before the command ended")
			}
			return 0, "", fmt.Errorf("control: %w", err)
		}
		switch kind {
		case frameStdout:
			if _, err := stdout.Write(p); err != nil {
				return 0, "", err
			}
		case frameStderr:
			if _, err := stderr.Write(p); err != nil {
				return 0, "", err
			}
		case frameExit:
			var x exit
			if err := json.Unmarshal(p, &x); err != nil {
				return 0, "", fmt.Errorf("control: exit frame: %w", err)
			}
			return x.Code, x.Error, nil
		default:
			return 0, "", fmt.Errorf("control: unknown frame %q", kind)
		}
	}
}
