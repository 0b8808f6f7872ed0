"""
Load topspark's exported NIR graphs in other libraries' NIR importers and measure agreement.

Run in the benchmark-only venv of benchmarks/peers/setup_nir_peers.sh, topspark_ros imported
from the source tree::

    PYTHONPATH=. $(benchmarks/peers/setup_nir_peers.sh)/bin/python benchmarks/nir_peers.py \
        --n 1000 --timesteps 2,8

For the shipped converted model it exports the graph (``SumPool2d`` for Sinabs and Norse,
``AvgPool2d`` for snnTorch), reads it back with ``nir.read``, imports it with each peer's
importer and runs it for T steps on Fashion-MNIST test images (the normalised image at every
step), comparing the predictions with the native SNN. None of the importers maps NIR's ``I``
node, so the output integrator is replaced by the ``Output`` and the script sums the output
over the steps (what ``I`` does). The shipped STDP graph is offered to each importer too and
what happens is reported (recurrent edges, ``Delay``, ``LIF`` with ``v_leak``).
Prints one JSON object per (peer, T) and a markdown table.
"""

import argparse
import copy
import json
import os
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / 'models'


def strip_integrator(graph):
    """Return a copy of ``graph`` with an ``I`` before the ``Output`` removed (summed outside)."""
    import nir

    graph = copy.deepcopy(graph)
    for name, node in list(graph.nodes.items()):
        if isinstance(node, nir.I):
            sources = [s for s, d in graph.edges if d == name]
            targets = [d for s, d in graph.edges if s == name]
            graph.edges = [e for e in graph.edges if name not in e]
            graph.edges += [(s, t) for s in sources for t in targets]
            del graph.nodes[name]
    return graph


def run_snntorch(graph, x, timesteps):
    """snnTorch: import_from_nir, stateful modules (init_hidden), reset between inputs."""
    import snntorch.utils
    from snntorch.import_nir import import_from_nir
    import torch

    net = import_from_nir(graph)
    snntorch.utils.reset(net)
    total = 0.0
    with torch.no_grad():
        for _ in range(timesteps):
            out = net(x)
            total = total + (out[0] if isinstance(out, tuple) else out)
    return total


def run_norse(graph, x, timesteps):
    """Norse: from_nir (nirtorch.load), explicit state passed from step to step."""
    import norse.torch
    import torch

    net = norse.torch.from_nir(graph)
    state, total = None, 0.0
    with torch.no_grad():
        for _ in range(timesteps):
            out, state = net(x, state)
            total = total + out
    return total


def run_sinabs(graph, x, timesteps):
    """Sinabs: from_nir with batch size and T; the input is [B * T, ...] (squeezed time)."""
    import sinabs.nir
    import torch

    net = sinabs.nir.from_nir(graph, batch_size=x.shape[0], num_timesteps=timesteps)
    seq = x.unsqueeze(1).expand(-1, timesteps, *x.shape[1:]).flatten(0, 1)
    with torch.no_grad():
        out = net(seq)
        if isinstance(out, tuple):
            out = out[0]
    return out.view(x.shape[0], timesteps, -1).sum(1)


def batch_flatten(graph):
    """
    Return ``graph`` with ``Flatten.start_dim`` counting the batch dimension.

    NIR's shapes leave the batch out (``start_dim=0`` flattens a whole ``[C, H, W]``); Norse
    and snnTorch hand ``start_dim`` to ``torch.nn.Flatten`` as it is, which then flattens the
    batch too, while Sinabs adds 1. For those two the script adds the 1 itself.
    """
    import nir

    graph = copy.deepcopy(graph)
    for node in graph.nodes.values():
        if isinstance(node, nir.Flatten) and node.start_dim >= 0:
            node.start_dim += 1
    return graph


PEERS = {'snntorch': ('avg', run_snntorch), 'norse': ('sum', run_norse),
         'sinabs': ('sum', run_sinabs)}
RESETS = {
    'snntorch': 'IF -> snn.Leaky(beta=0.9, reset by subtraction, init_hidden=False, one '
                'threshold per layer): a leak NIR IF does not have',
    'norse': 'IF -> IAFCell: reset to v_reset (0), v(0) = 0, fires at v > v_th',
    'sinabs': 'IF -> IAFSqueeze: reset by subtraction, MultiSpike (several spikes per step '
              'when v >= 2 v_th), v bounded below at -v_th, v(0) = 0',
}


def try_stdp(peer: str, graph) -> str:
    """Return what the peer's importer does with the STDP graph (one line)."""
    try:
        if peer == 'snntorch':
            from snntorch.import_nir import import_from_nir
            import_from_nir(graph)
        elif peer == 'norse':
            import norse.torch
            norse.torch.from_nir(graph)
        else:
            import sinabs.nir
            sinabs.nir.from_nir(graph, batch_size=1, num_timesteps=1)
    except Exception as exc:  # a peer's own error types
        return f'refused: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}'
    return 'imported (refractoriness, one-spike rule, initial rest potential and Poisson ' \
           'input are outside NIR: not a faithful run)'


def main(argv=None) -> int:
    """Run the comparison; print JSON lines and a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--n', type=int, default=1000, help='test images')
    parser.add_argument('--timesteps', default='2,8', help='comma-separated T')
    parser.add_argument('--peers', default=','.join(PEERS), help='comma-separated peers')
    args = parser.parse_args(argv)
    import nir
    import torch

    from topspark_ros.core.checkpoint import load_checkpoint
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    from topspark_ros.core.exchange.nir_export import export_model, write_nir

    torch.set_num_threads(1)
    test = load_mnist_family(find_dataset_dir('fashion-mnist'), 'test')
    images, labels = test.images[:args.n], test.labels[:args.n]
    model, meta = load_checkpoint(MODELS / 'converted_fmnist_vgg.json')
    stdp, stdp_meta = load_checkpoint(MODELS / 'stdp_fmnist_n400.json')
    tmp = Path(tempfile.mkdtemp())
    files = {}
    for pool in ('sum', 'avg'):
        graph, _ = export_model(model, pool=pool, info=meta['info'])
        files[pool] = write_nir(graph, tmp / f'vgg_{pool}.nir')
    stdp_file = write_nir(export_model(stdp, info=stdp_meta['info'])[0], tmp / 'stdp.nir')
    x = model._inputs(images)
    rows = []
    for peer in args.peers.split(','):
        pool, runner = PEERS[peer]
        graph = strip_integrator(nir.read(files[pool]))
        if peer != 'sinabs':
            graph = batch_flatten(graph)
        for timesteps in [int(t) for t in args.timesteps.split(',')]:
            native = model.infer(images, timesteps=timesteps).predicted
            row = {'peer': peer, 'timesteps': timesteps, 'n': int(len(images)),
                   'pool': pool, 'reset': RESETS[peer],
                   'native_accuracy': float(np.mean(native == labels))}
            start = time.perf_counter()
            try:
                out = runner(graph, x, timesteps)
                pred = out.detach().cpu().numpy().reshape(len(images), -1).argmax(1)
                row.update(agreement=float(np.mean(pred == native)),
                           peer_accuracy=float(np.mean(pred == labels)))
            except Exception as exc:  # a peer's own error types
                row['error'] = f'{type(exc).__name__}: {str(exc).splitlines()[0][:160]}'
            row['seconds'] = time.perf_counter() - start
            print(json.dumps(row), flush=True)
            rows.append(row)
        stdp_line = try_stdp(peer, nir.read(stdp_file))
        print(json.dumps({'peer': peer, 'stdp_graph': stdp_line}), flush=True)
        rows.append({'peer': peer, 'stdp': stdp_line})
    print('\n| peer | T | agreement | peer accuracy | native accuracy |')
    print('|---|---|---|---|---|')
    for row in rows:
        if 'timesteps' in row:
            agree = f'{row["agreement"]:.1%}' if 'agreement' in row else row['error']
            acc = f'{row["peer_accuracy"]:.1%}' if 'peer_accuracy' in row else '-'
            print(f'| {row["peer"]} | {row["timesteps"]} | {agree} | {acc} | '
                  f'{row["native_accuracy"]:.1%} |')
    print(f'\nmachine: {os.cpu_count()} cores, torch {torch.__version__}, '
          f'python {sys.version.split()[0]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
