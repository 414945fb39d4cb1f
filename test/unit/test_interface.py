"""The world model <-> policy interface: each node's streaming core gives its model exactly the inputs
the training samples hold (world_model_node.interface is the one definition they share)."""
import numpy as np
import torch

from photon_policy.policy.dataset import PolicySamples
from photon_policy.policy.export import EagerCompute
from photon_policy.policy.model import DrivingPolicy, PolicyConfig
from photon_policy.policy.runtime import PolicyRuntime
from test_world_model import one_thread, scrolling_episode, tiny_config  # noqa: F401
from world_model_node import interface
from world_model_node.dataset import WindowDataset
from world_model_node.model import WorldModel
from world_model_node.predictor import StreamingPredictor


def test_step_actions_are_the_mean_of_the_commands_before_each_frame():
    commands = np.arange(40, dtype=np.float32).reshape(20, 2)
    frames = interface.context_frames(15, 3, 5)
    assert frames.tolist() == [5, 10, 15]
    np.testing.assert_allclose(interface.step_actions(commands, frames, 5),
                               [commands[0:5].mean(0), commands[5:10].mean(0), commands[10:15].mean(0)])
    window = interface.AppliedCommands(model_dt=0.1)
    for j in range(1, 16):  # frame j arrives with the command applied since frame j-1
        window.add(j * 0.02, commands[j - 1])
    np.testing.assert_allclose(window.mean_over_step(15 * 0.02), commands[10:15].mean(0))


def test_policy_runtime_feeds_the_policy_what_the_training_sample_holds():
    """Steering inputs on, so every input of the interface (frames, both action columns, all five
    extras) reaches the output: equal outputs mean equal inputs."""
    torch.manual_seed(5)
    policy = DrivingPolicy(PolicyConfig(world_model=tiny_config(context_steps=3).to_dict(), head_width=16,
                                        steering_inputs=True)).eval()
    ep = scrolling_episode("live", frames=90, seed=4)
    rng = np.random.default_rng(9)
    ep.imu[:] = rng.normal(0, 30, ep.imu.shape)
    ep.odom[:, 0] = np.abs(rng.normal(40, 10, len(ep)))
    runtime = PolicyRuntime(EagerCompute(policy), 3, 0.1, policy.latent_shape)
    commands = {}
    for k in range(len(ep)):  # the simulator's order: IMU, image, odometry, then the answer
        t = float(ep.stamps[k])
        runtime.add_imu(t, *ep.imu[k])
        result = runtime.push(ep.frames[k], t)
        runtime.add_odom(t, ep.odom[k, 0])
        runtime.add_applied(t, *ep.commands[k])
        commands[k] = result.command
    samples = PolicySamples([ep], 3, 0.1, skip_s=0.0)
    assert len(samples) > 40
    for i in range(0, len(samples), 3):
        item, k = samples[i], samples.frame_index(i)
        with torch.no_grad():
            want = policy(item["frames"][None], item["actions"][None], item["extras"][None])[0].numpy()
        np.testing.assert_allclose(commands[k], want, rtol=1e-5, atol=1e-5)


def test_world_model_predictor_feeds_the_model_what_the_training_window_holds():
    torch.manual_seed(2)
    model = WorldModel(tiny_config(context_steps=3, horizon_steps=3)).eval()
    ep = scrolling_episode("live", frames=80, seed=6)
    ds = WindowDataset([ep], 3, 3, 0.1, skip_s=0.0)
    for i in (0, 7, len(ds) - 1):
        item, frames = ds[i], ds.frame_indices(i)
        predictor = StreamingPredictor(model)
        for j in range(frames[0], frames[2] + 1):  # the stream from the window's first frame
            predictor.push(ep.frames[j], float(ep.stamps[j]), ep.commands[j - 1])
        assert predictor.ready and predictor.observed == 3
        future = item["actions"][3:]
        got = predictor.predict(future[None].numpy())[0]
        with torch.no_grad():
            want = model.video_pred(item["frames"][None, :3], item["actions"][None, :3], future[None])[0]
        want = (want.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        np.testing.assert_array_equal(got, want)


def test_clock_jumps_reset_the_world_model_context():
    model = WorldModel(tiny_config(context_steps=3)).eval()
    predictor = StreamingPredictor(model)
    ep = scrolling_episode("jump", frames=40, seed=1)
    for j in range(12):
        predictor.push(ep.frames[j], 100.0 + 0.02 * j, np.zeros(2))
    assert predictor.ready
    predictor.push(ep.frames[12], 100.0 + 3600.0, np.zeros(2))   # one frame stamped an hour ahead
    for j in range(13, 40):                                       # then the stream as before
        predictor.push(ep.frames[j], 100.0 + 0.02 * j, np.zeros(2))
    assert predictor.clock_jumps == 1 and predictor.ready
    for j in range(40):                                           # the clock set back an hour
        predictor.push(ep.frames[j % 40], 100.0 - 3600.0 + 0.02 * j, np.zeros(2))
    assert predictor.clock_jumps == 2 and predictor.ready and predictor.out_of_order == 0
