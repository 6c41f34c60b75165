"""PublishThread: items published in order on its own thread, at most one waiting (submit
blocks instead of dropping), a failing publish reported and survived, stop() joins."""
from __future__ import annotations

import threading

from da3_ros.ros.publish_thread import PublishThread


def test_order_backpressure_errors_and_stop():
    gate, published, errors, threads = threading.Event(), [], [], set()

    def publish(item):
        threads.add(threading.current_thread().name)
        gate.wait(5.0)
        if item == 'bad':
            raise RuntimeError('context invalid')
        published.append(item)

    pub = PublishThread(publish, errors.append, name='test_publish')
    pub.submit(1)                       # taken at once, then blocked on the gate
    pub.submit(2)                       # waits in the slot
    third = threading.Thread(target=pub.submit, args=(3,))
    third.start()
    third.join(0.3)
    assert third.is_alive()             # the slot is full: submit blocks, nothing is dropped
    gate.set()
    third.join(5.0)
    pub.submit('bad')
    pub.submit(4)
    assert pub.drain(5.0)
    assert published == [1, 2, 3, 4] and threads == {'test_publish'}
    assert [str(e) for e in errors] == ['context invalid']
    pub.stop()
    pub.submit(5)                       # after stop: returns at once, never published
    assert published == [1, 2, 3, 4]
