"""Two gloo processes on the CPU through the real command's worker."""
from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from conftest import TINY, free_port


def _worker(local_rank, args, out_dir):
    from leaf_plugin.training import train_process

    algorithm, _ = train_process(local_rank, 2, args)
    state = {k: v.detach().cpu() for k, v in algorithm.model.module.named_parameters()}
    torch.save(state, os.path.join(out_dir, f"rank{local_rank}.pt"))


@pytest.mark.slow
def test_leaf_fixmatch_with_two_gloo_processes(tmp_path):
    from leaf_plugin.arguments import parse_train_args

    save_dir, out_dir = tmp_path / "runs", tmp_path / "weights"
    out_dir.mkdir()
    args = parse_train_args(["--algorithm", "leaf_fixmatch", *TINY, "--num_train_iter", "4", "--num_eval_iter", "2",
                             "--save_dir", str(save_dir), "--multiprocessing-distributed", "--procs_per_node", "2",
                             "--dist-url", f"tcp://127.0.0.1:{free_port()}"])
    args.distributed = True
    args.world_size = 2
    args.dist_backend = "gloo"
    mp.spawn(_worker, nprocs=2, args=(args, str(out_dir)))
    a = torch.load(out_dir / "rank0.pt")
    b = torch.load(out_dir / "rank1.pt")
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    run = save_dir / args.save_name
    written = sorted(p.name for p in run.iterdir())
    assert "latest_model.pth" in written and "log.txt" in written and "results.json" in written
    # rank 1 logs nothing to the run folder: every line in log.txt is rank 0's, and once
    log = (run / "log.txt").read_text()
    assert log.count("unlabeled data number:") == 1
    assert not any(name.endswith("1.txt") or "rank1" in name for name in written)


def test_command_line_spawns_gloo_workers(tmp_path, capsys):
    """--multiprocessing-distributed on the CPU through ``semilearn train`` itself."""
    from conftest import run_cli

    rc, out, err = run_cli(["train", *TINY, "--algorithm", "fixmatch", "--num_train_iter", "2", "--num_eval_iter",
                            "2", "--save_dir", tmp_path, "--multiprocessing-distributed", "--procs_per_node", "2",
                            "--dist-url", f"tcp://127.0.0.1:{free_port()}"], capsys)
    assert rc == 0, err
    assert (tmp_path / "fixmatch_digits_40_0" / "results.json").exists()
