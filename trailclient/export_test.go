package trailclient

// QueueLen reports how many events wait in c's queue, not yet taken by the
// sending goroutine, so that tests can wait on that state instead of on time.
func QueueLen(c *Client) int { return len(c.in) }
