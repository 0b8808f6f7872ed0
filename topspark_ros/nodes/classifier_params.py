"""
The classifier node's parameters: name, default, range and description of each.

The node (:mod:`topspark_ros.nodes.classifier`) declares them with these descriptors;
``config/topspark.yaml`` sets them, the README's parameter table describes them, and
:mod:`topspark_ros.core.pipeline` reads them by name.
"""

from topspark_ros.core.energy import PRESETS
from topspark_ros.core.pipeline import FROM_CHECKPOINT, INPUT_SEEDS
from topspark_ros.core.preprocess import CROPS
from topspark_ros.core.threads import DEFAULT_TORCH_THREADS
from topspark_ros.nodes.bond import PARAM as BOND_PARAM
from topspark_ros.nodes.parameters import Param
from topspark_ros.nodes.resources import SHIPPED_MODEL

IMAGE_TRANSPORTS = ('raw', 'compressed')
INPUT_MODES = ('frames', 'events')
MAX_TIMESTEPS = 100000  # T=1e5 takes about 0.2 s a frame with the shipped STDP model
WINDOW_MODES = ('time', 'count')
PARAMS = (
    Param('input_mode', 'frames', "What is classified: camera frames ('image' topic) or "
          "event-camera packets ('events' topic, event_camera_msgs/EventPacket).",
          choices=INPUT_MODES, live=False),
    Param('model_path', SHIPPED_MODEL, 'Checkpoint (.json) of the model to load on configure '
          '(a path or package://<package>/<path>).', live=False),
    Param('device', 'cpu', "Where the model runs: 'cpu' or a torch device such as 'cuda'.",
          live=False),
    Param('torch_threads', DEFAULT_TORCH_THREADS, 'Intra-op threads of torch in this process '
          '(1: measured robust when other nodes share the cores, see docs/benchmarks.md; more '
          'pays only with idle cores).', low=1, high=256, live=False),
    Param('profile_path', '', 'Timestep profile (.yaml) of the model, whose enhanced parameters '
          'are applied at each T and whose results by confidence calibrate the vision_msgs '
          "scores; '' for none (config/topspark.yaml sets the shipped model's).", live=False),
    Param('default_timesteps', 100, 'Timestep count T used until a TimestepCommand arrives '
          '(clamped to max_timesteps, with a warning).', low=1, high=MAX_TIMESTEPS),
    Param('max_timesteps', MAX_TIMESTEPS, 'Largest T used: the default T and a '
          'TimestepCommand above it are clamped to it (a command comes back whole when it '
          'is raised), a command of 0 ignored (both counted in /diagnostics: timesteps_clamped, '
          'timesteps_refused); one above the largest T of the profile is taken with a '
          "warning (set this to bound it; best to a T of the profile: at another the model's "
          'own values run and vision_msgs scores are shares).', low=1, high=MAX_TIMESTEPS),
    Param('early_exit', False, 'Stop an input early once its winning class is decided '
          "(vision_msgs scores calibrated where the profile measured this margin and floor's "
          'results: /diagnostics vision_score).'),
    Param('early_exit_margin', 3.0, 'Early exit: lead of the best class over the second (> 0), '
          'in accumulated output spikes (STDP) or summed output-layer current (converted).',
          above=0.0),
    Param('early_exit_min_steps', 0, 'Early exit: never stop before this many steps (0: the '
          "model family's floor, 8, or 1 for a converted model, whose T is 1 to 8).", low=0,
          high=MAX_TIMESTEPS),
    Param('online_learning', False, 'Adapt the weights to incoming frames with unsupervised '
          'STDP at the commanded T (each classification then carries the cost of learning '
          'from its frame: plasticity_updates and energy_j).'),
    Param('input_seed', 'stamp', "Frames, STDP models: the random numbers of a frame's "
          "Poisson input spikes come from its header stamp ('stamp': a frame replayed from a "
          'bag with its stamp gives the result it gave live, whatever was dropped before it) '
          "or from the model's seeded stream ('stream': a result depends on how many frames "
          'came before it). Deterministic models ignore it.', choices=INPUT_SEEDS),
    Param('save_path', '', "Where learnt weights are saved ('' : $ROS_HOME/topspark_ros/"
          '<model>_online.json, ROS_HOME defaulting to ~/.ros; a node other than /classifier '
          'saves under its namespace and name: .../topspark_ros/camA/classifier/...); a '
          'checkpoint there learnt from another model is not replaced.', live=False),
    Param('save_every_n', 1000, 'On-line learning: save the weights every N learnt frames '
          '(0: only on deactivate, shutdown and ~/save_model).', low=0),
    Param('class_names', [FROM_CHECKPOINT], 'One name per class; the default takes the '
          "checkpoint's names.", live=False),
    Param('energy_preset', 'cmos45_fp32', 'Hardware preset of the energy estimates.',
          choices=tuple(PRESETS), live=False),
    Param('crop', 'center', 'How frames are fitted to the model input. Not given: as the '
          "model's training images were (topspark train records it), else center.",
          choices=CROPS, live=False),
    Param('invert', False, 'Invert intensities (for dark objects on light backgrounds). Not '
          'given: as the model was trained, else false.', live=False),
    Param('image_reliability', 'best_effort', 'QoS reliability of the image subscription.',
          choices=('best_effort', 'reliable'), live=False),
    Param('image_depth', 1, 'QoS queue depth of the image subscription (keep last): frames '
          'arriving while one is classified wait there; the newest is classified next, the '
          'others are dropped and counted (a depth above 1 adds no throughput; the frames '
          'taken and dropped are counted whatever their stamps).', low=1, high=100,
          live=False),
    Param('image_transport', 'raw', "Frames: 'raw' subscribes sensor_msgs/Image on 'image', "
          "'compressed' sensor_msgs/CompressedImage (JPEG or PNG) on 'image/compressed', as "
          "image_transport's compressed transport names it.", choices=IMAGE_TRANSPORTS,
          live=False),
    Param('publish_vision_msgs', True, 'Also publish vision_msgs/Classification on '
          "'vision_classification', and latched vision_msgs/LabelInfo on 'label_info' and "
          "vision_msgs/VisionInfo on 'vision_info' (needs the vision_msgs package).",
          live=False),
    Param('diagnostics_period_s', 1.0, 'Period of the /diagnostics status (s, node clock; '
          'a change applies at once).', low=0.05, high=3600.0),
    Param('silence_warn_s', 5.0, 'Diagnostics warn while active when no frame or event '
          'packet arrived for this long (s).', low=0.1),
    Param('window_mode', 'time', 'Events: cut the stream into windows of window_ms '
          "milliseconds ('time') or of window_events events ('count').", choices=WINDOW_MODES,
          live=False),
    Param('window_ms', 300.0, "Events: window length for window_mode 'time' (ms).", low=0.001,
          high=1e6, live=False),
    Param('window_events', 3000, "Events: events per window for window_mode 'count' (the "
          'open window is held in memory, 13 bytes an event).', low=1, high=1000000,
          live=False),
    Param('window_min_events', 50, 'Events: windows with fewer events are not classified.',
          low=1, live=False),
    Param('roi', [0, 0, 0, 0], 'Events: region of interest [x0, y0, width, height] on the '
          'sensor (pixels) mapped onto the model input; width or height 0: the region the '
          'model was trained on, else the centred crop.', low=0, length=4, live=False),
    Param('max_pending_windows', 2, 'Events: complete windows kept while the model is busy; '
          'beyond it the oldest are dropped and counted.', low=1, high=1000, live=False),
    Param('events_reliability', 'best_effort', 'Events: QoS reliability of the events '
          'subscription.', choices=('best_effort', 'reliable'), live=False),
    Param('events_depth', 1000, 'Events: QoS queue depth of the events subscription (packets; '
          'drivers publish about one per millisecond, and a lost packet loses events). It holds '
          'what arrives while the reader is held up (by the GIL, on cores other jobs share): '
          '1000 is a second of 1 ms packets, up to 80 MB at 20 Mev/s when full.',
          low=1, high=10000, live=False),
    Param('events_batch_ms', 10.0, 'Events: the reader wakes at most once per this period (ms) '
          'and takes every packet waiting: fewer wake-ups cost less CPU at driver rates (10 '
          'against 2 ms: 2 to 5 points of a core less at 1 to 20 Mev/s), and windows close at '
          'most this much later. 0: wake for every packet; events_depth must hold the packets '
          'of one period.', low=0.0, high=100.0, live=False),
    Param('max_packet_bytes', 1048576, 'Events: larger packets are refused unread and counted '
          '(errors, packets_refused); decoding one takes at most about 79 times its size in '
          'memory. 1 MiB holds 1 ms of a sensor at 300 Mev/s in evt3.', low=1024,
          high=1 << 30, live=False),
    BOND_PARAM,
)
