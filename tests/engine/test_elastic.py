"""Multi-node without SLURM: torchrun with two "nodes" on one machine (c10d rendezvous,
--max-restarts); one node killed and started again, and the run continues from its last
checkpoint to the weights of a run never interrupted."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cluster_runs as cr  # noqa: E402

from resnet_det.engine.launch import find_free_port  # noqa: E402


def _children(pid):
    """The processes whose parent is ``pid`` (a torchrun agent's workers, which run in their
    own sessions: killing the agent's process group leaves them)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process tree from /proc")
@pytest.mark.timeout(1200)
def test_torchrun_node_killed_and_restarted_continues_to_the_uninterrupted_weights(
    tmp_path, cluster_datasets, tiny_reference
):
    out = tmp_path / "elastic"
    port = find_free_port()
    # torch >= 2.5 shares the rendezvous TCP store with the workers by default, and a node
    # that joins a later round then waits forever for MASTER_ADDR (pytorch/pytorch#135712):
    # docs/cluster.md asks for this variable on every node.
    # One CPU thread per process, as torchrun gives the reference's two processes on one node
    # (with one process per node it leaves the thread count alone): bit-identical float
    # results on CPU need the same thread count.
    env = dict(
        cr.run_env(cluster_datasets), TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1", OMP_NUM_THREADS="1"
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
    cmd += ["--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    cmd += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "tiny", "--max-restarts", "3"]
    cmd += cr.train_args(out)

    def node(name):
        log = open(tmp_path / f"{name}.log", "w")  # closed with the process
        proc = subprocess.Popen(
            cmd, env=env, cwd=cr.ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return proc, log

    nodes = []
    try:
        nodes.append(node("a"))  # hosts the rendezvous store
        cr.wait_until(lambda: _listening(port), "node a's rendezvous store", timeout=120)
        nodes.append(node("b"))
        cr.wait_until(lambda: cr.last_iteration(out) >= 25, "iteration 25", timeout=900)
        # Node b dies: its agent and its worker, at once.
        agent = nodes[1][0]
        for pid in _children(agent.pid) + [agent.pid]:
            os.kill(pid, signal.SIGKILL)
        killed_at = cr.last_iteration(out)
        agent.wait()
        time.sleep(1)
        nodes.append(node("b_again"))
        for proc, _ in (nodes[0], nodes[2]):
            proc.wait(timeout=900)
    finally:
        for proc, log in nodes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("a", "b_again")}
    assert nodes[0][0].returncode == 0 and nodes[2][0].returncode == 0, logs
    log = (out / "log.txt").read_text()
    # The surviving node's worker group restarted (its count is 1, the new node's 0: the
    # ranks agree that the run is restarted) and resumed from the last periodic checkpoint.
    assert "Restarted run (TORCHELASTIC_RESTART_COUNT=1): resuming from OUTPUT_DIR" in log
    resumed = int(log.split("Starting training from iteration ")[-1].split()[0])
    assert resumed % 10 == 0 and 20 <= resumed <= killed_at + 1, (resumed, killed_at)
    assert f"Resumed from {out / f'model_{resumed - 1:07d}.pth'}" in log
    diff = cr.max_abs_diff(cr.final_weights(out), tiny_reference)
    print(
        f"torchrun 2 nodes, node b killed after iteration ~{killed_at} and restarted, resumed "
        f"at {resumed}: max |diff| = {diff} vs the uninterrupted run"
    )
    assert diff == 0
