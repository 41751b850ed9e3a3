import threading

from mmdemo.engines.runner import MainThreadRunner


def test_jobs_from_other_threads_run_on_the_serving_thread():
    runner, stop, ran_on = MainThreadRunner(), threading.Event(), []

    def job():
        ran_on.append(threading.current_thread())
        if len(ran_on) == 3:
            stop.set()

    def failing():
        raise RuntimeError("a job that fails does not stop the loop")

    submitters = [threading.Thread(target=runner.submit, args=(fn,)) for fn in (job, failing, job, job)]
    for thread in submitters:
        thread.start()
    runner.serve(stop)
    assert ran_on == [threading.current_thread()] * 3
