package fakesmsc

import (
	"container/heap"
	"sync"
	"time"
)

// task is a delayed action: a submit response (c, frame, receipts, closeAfter) or a receipt
// that becomes ready after DLRDelay (dlr).
type task struct {
	due        time.Time
	order      uint64 // FIFO among equal due times
	c          *conn
	frame      []byte
	rcpts      []*receipt
	closeAfter bool
	dlr        *receipt
}

type taskHeap []*task

func (h taskHeap) Len() int { return len(h) }
func (h taskHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].order < h[j].order
	}
	return h[i].due.Before(h[j].due)
}
func (h taskHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *taskHeap) Push(x any)   { *h = append(*h, x.(*task)) }
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// scheduler runs delayed tasks in due order on one goroutine.
type scheduler struct {
	mu    sync.Mutex
	h     taskHeap
	order uint64
	wake  chan struct{}
}

func (q *scheduler) add(t *task) {
	q.mu.Lock()
	q.order++
	t.order = q.order
	heap.Push(&q.h, t)
	first := q.h[0] == t
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Server) runScheduler() {
	defer s.wg.Done()
	q := &s.sched
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []*task
	for {
		q.mu.Lock()
		now := time.Now()
		ready = ready[:0]
		for len(q.h) > 0 && !q.h[0].due.After(now) {
			ready = append(ready, heap.Pop(&q.h).(*task))
		}
		wait := time.Duration(-1)
		if len(q.h) > 0 {
			wait = q.h[0].due.Sub(now)
		}
		q.mu.Unlock()
		for i, t := range ready {
			s.runTask(t)
			ready[i] = nil
		}
		if len(ready) > 0 {
			continue
		}
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-timer.C:
		case <-q.wake:
		case <-s.stop:
			return
		}
	}
}

func (s *Server) runTask(t *task) {
	if t.dlr != nil {
		s.hub.ready(t.dlr)
		return
	}
	t.c.sendSubmitResp(t.frame, t.rcpts, t.closeAfter)
}
