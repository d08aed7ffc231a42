"""The GPU layer: the real no-NVML path, and GPUs scripted through the fake NVML backend (the one seam).

What a user relies on: `tui-trainer gpus` never crashes and says why there is no GPU; GPUs are shown
with torch's ids (CUDA_VISIBLE_DEVICES applied); an unsupported field is n/a; a lost GPU is marked
and never hides the others; the sampler keeps a bounded history and stops at once.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import signal
import subprocess
import sys
import threading
import time

import pynvml
import pytest

from tests.conftest import ROOT, cli
from tests.fake_nvml import FakeGpu, FakeMig, FakeNvml
from tui_trainer.cli.gpus import add_arguments, format_table, run, to_json
from tui_trainer.hardware import (
    GpuSampler,
    Nvml,
    cuda_ready,
    read_inventory,
    read_samples,
    read_torch_memory,
    resolve_visible,
)
from tui_trainer.hardware.machine import machine_from_inventory


def _nvml_library_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


# A machine with an NVIDIA driver cannot lose its library, so there the no-driver tests hide it from
# pynvml in their own interpreter (its loader then takes the same "library not found" path); here, with
# no driver, they run as they are.
_HIDE_NVML = """
import ctypes, pynvml
def _cdll(name, *args, **kwargs):
    if "nvidia-ml" in str(name):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")
    return ctypes.CDLL(name, *args, **kwargs)
pynvml.CDLL = _cdll
"""
_NO_NVML = _HIDE_NVML if _nvml_library_present() else ""


def cli_without_nvml(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real `tui-trainer` command on a machine without the NVML library."""
    code = _NO_NVML + f"import runpy, sys\nsys.argv = ['tui-trainer', *{list(args)!r}]\n" \
                      "runpy.run_module('tui_trainer', run_name='__main__', alter_sys=True)\n"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def inventory_of(fake: FakeNvml, visible: str | None = None, order: str | None = None):
    return read_inventory(Nvml(fake), visible_devices=visible, device_order=order)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


# --- the real machine: no NVIDIA driver here -------------------------------------------------------

def test_gpus_without_a_driver_says_why_and_that_training_runs_on_cpu():
    result = cli_without_nvml("gpus")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["no NVIDIA GPU detected: NVML library not found",
                                          'training will run on CPU (strategy "cpu")']
    assert result.stderr == ""


def test_gpus_json_without_a_driver_is_valid_json_with_the_reason():
    result = cli_without_nvml("gpus", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert data["available"] is False and data["gpus"] == []
    assert data["reason"] == "no NVIDIA GPU detected: NVML library not found"
    assert "CPU" in data["note"]


def test_gpus_watch_without_a_driver_ends_at_once_instead_of_watching_nothing():
    result = cli_without_nvml("gpus", "--watch", "--interval", "0.1", timeout=30)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "no NVIDIA GPU detected: NVML library not found" in result.stdout


def test_machine_and_sampler_report_no_gpu_with_the_nvml_reason():
    code = _NO_NVML + """
import json
from tui_trainer.hardware import GpuSampler
from tui_trainer.hardware.machine import detect_machine
machine = detect_machine()
sampler = GpuSampler(interval=0.05)
sampler.start()
sampled = sampler.wait(0, timeout=5)  # with no GPU the thread ends instead of sampling
sampler.stop()
print(json.dumps({"gpus": len(machine.gpus), "note": machine.gpu_note, "sampled": sampled,
                  "reason": sampler.reason, "latest": len(sampler.latest()), "running": sampler.running}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    note = "no NVIDIA GPU detected: NVML library not found"
    assert seen == {"gpus": 0, "note": note, "sampled": False, "reason": note, "latest": 0, "running": False}


def test_bad_interval_is_refused_by_argparse_not_by_a_traceback():
    result = cli("gpus", "--watch", "--interval", "0")
    assert result.returncode == 2 and "positive" in result.stderr and "Traceback" not in result.stderr


def test_the_hardware_layer_imports_neither_torch_nor_the_ui():
    code = ("import sys, tui_trainer.hardware, tui_trainer.cli.gpus\n"
            "tui_trainer.hardware.read_inventory(); tui_trainer.hardware.read_torch_memory(0)\n"
            "print([m for m in ('torch', 'textual', 'rich') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_torch_memory_is_read_only_once_cuda_is_up_and_never_initialises_it():
    import torch

    assert read_torch_memory(0) is None, "no CUDA context in this process: nothing of ours to show"
    assert not cuda_ready() and not torch.cuda.is_initialized(), "reading must not initialise CUDA"


# --- visible ids: CUDA_VISIBLE_DEVICES, as CUDA and torch read it ----------------------------------

UUIDS = ["GPU-0a3f0000-aaaa", "GPU-1a3f0001-bbbb", "GPU-5a3f0002-cccc", "GPU-5b000003-dddd"]


@pytest.mark.parametrize("spec, physical", [
    (None, (0, 1, 2, 3)),
    ("", ()),
    ("2,3", (2, 3)),
    ("3, 1", (3, 1)),
    ("1,7,2", (1,)),               # an id past the last GPU ends the list
    ("1,-1,2", (1,)),              # so does a negative one
    ("0,0", ()),                   # a repeated GPU makes CUDA see none
    ("GPU-5a3f", (2,)),            # a unique UUID prefix
    ("GPU-5b000003-dddd,GPU-0", (3, 0)),
    ("GPU-5", ()),                 # ambiguous prefix: CUDA stops there
    ("GPU-1a3f,GPU-1a3f0001", ()), # the same GPU twice, by two prefixes
    ("GPU-1a3f,GPU-nope,GPU-0a3f", (1,)),
    ("GPU-1a3f,2", (1,)),          # a list is all UUIDs or all numbers
    ("MIG-1234", ()),              # MIG instances are mapped through NVML by resolve_mig, not here
])
def test_cuda_visible_devices_resolve_to_physical_gpus_in_torch_order(spec, physical):
    assert resolve_visible(spec, UUIDS) == physical


def test_with_cuda_visible_devices_2_3_torch_cuda_0_is_physical_gpu_2():
    nvml = Nvml(FakeNvml.with_gpus(4))
    inventory = read_inventory(nvml, visible_devices="2,3")
    assert [(g.index, g.physical_index) for g in inventory.gpus] == [(0, 2), (1, 3)]
    assert inventory.hidden == (0, 1)
    assert inventory.gpus[0].pci_bus_id == "00000000:09:00.0" and inventory.gpus[0].label == "GPU 0 (physical 2)"
    samples = read_samples(nvml, inventory)
    # with_gpus(4) gives physical GPU i (i+1) GiB used: torch's cuda:0 must show physical 2's 3 GiB.
    assert [(s.index, s.memory_used_mib) for s in samples] == [(0, 3072), (1, 4096)]
    table = format_table(inventory, samples)
    assert "hidden: physical 0, 1" in table
    rows = [line.split() for line in table.splitlines() if line.strip().startswith(("0 ", "1 "))]
    assert [row[:2] for row in rows] == [["0", "2"], ["1", "3"]]


def test_uuid_prefixes_in_cuda_visible_devices_map_through_nvml_uuids():
    fake = FakeNvml.with_gpus(4)
    inventory = inventory_of(fake, visible=f"GPU-3a3f,{fake.gpus[1].uuid}")
    assert [(g.index, g.physical_index, g.uuid) for g in inventory.gpus] == [
        (0, 3, fake.gpus[3].uuid), (1, 1, fake.gpus[1].uuid)]
    machine = machine_from_inventory(inventory, cpu_count=8)
    assert [g.index for g in machine.gpus] == [0, 1] and machine.gpus[0].capability == (8, 0)
    assert machine.gpus[0].memory_total_mib == 40960 and machine.gpu_note == ""


def test_a_variable_that_hides_every_gpu_is_a_reason_not_an_empty_table():
    inventory = inventory_of(FakeNvml.with_gpus(2), visible="")
    assert not inventory.available and inventory.hidden == (0, 1)
    assert "CUDA_VISIBLE_DEVICES='' leaves none of the 2 GPU(s) visible" in inventory.reason
    assert machine_from_inventory(inventory, 4).gpu_note == inventory.reason


def test_mixed_gpu_models_warn_about_cuda_device_order():
    fake = FakeNvml([FakeGpu(name="NVIDIA A100", uuid="GPU-a"), FakeGpu(name="NVIDIA T4", uuid="GPU-b")])
    assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in n for n in inventory_of(fake).notes)
    assert inventory_of(fake, order="PCI_BUS_ID").notes == ()


def mig_machine() -> FakeNvml:
    """Two A100s; physical GPU 1 is split into MIG instances in slots 0 and 2 (slot 1 empty)."""
    fake = FakeNvml.with_gpus(2)
    fake.gpus[1].mig = {
        0: FakeMig(uuid="MIG-aaaaaaaa-1111-2222-3333-444444444444", name="NVIDIA A100-SXM4-40GB MIG 3g.20gb"),
        2: FakeMig(uuid="MIG-bbbbbbbb-1111-2222-3333-444444444444", name="NVIDIA A100-SXM4-40GB MIG 2g.10gb",
                   total_mib=9728, used_mib=1500, processes=[(4321, "python3", 1200)]),
    }
    return fake


def test_a_mig_instance_in_cuda_visible_devices_is_a_usable_gpu_shown_as_a_slice_of_its_parent():
    from tests.conftest import make_config
    from tui_trainer.config import validate_for_machine
    from tui_trainer.ui.widgets.gpu_panel import gpu_lines

    fake = mig_machine()
    nvml = Nvml(fake)
    inventory = read_inventory(nvml, visible_devices="MIG-bbbbbbbb")  # a unique prefix, as CUDA accepts
    (gpu,) = inventory.gpus
    assert (gpu.index, gpu.physical_index, gpu.is_mig, gpu.uuid) == (0, 1, True, fake.gpus[1].mig[2].uuid)
    assert gpu.name == "NVIDIA A100-SXM4-40GB MIG 2g.10gb" and gpu.memory_total_mib == 9728
    assert gpu.label == "GPU 0 (MIG instance on physical 1)" and inventory.hidden == (0,)
    (sample,) = read_samples(nvml, inventory)
    assert (sample.memory_used_mib, sample.memory_total_mib) == (1500, 9728), "the instance's memory, not the board's"
    assert sample.utilization_gpu is None and sample.temperature_c == 55, "board temperature; no MIG utilisation"
    assert [p.pid for p in sample.processes] == [4321]
    table = format_table(inventory, (sample,))
    row = next(line for line in table.splitlines() if line.strip().startswith("0 "))
    assert "1 MIG" in row and "MIG 2g.10gb" in row and "1,500 / 9,728 MiB" in row
    assert any("MIG instance of physical GPU 1" in note for note in inventory.notes)
    assert to_json(inventory, (sample,))["gpus"][0]["mig"] is True
    assert "MIG instance of GPU 1" in gpu_lines(sample, 0, 60).plain
    machine = machine_from_inventory(inventory, cpu_count=4)
    assert [(g.index, g.capability) for g in machine.gpus] == [(0, (8, 0))]
    single_bf16 = make_config(strategy={"name": "single"}, train={"precision": "bf16-mixed"})
    assert validate_for_machine(single_bf16, machine) == [], "single and bf16 run on a MIG instance"


def test_a_mig_uuid_nvml_does_not_list_says_which_instances_exist():
    inventory = inventory_of(mig_machine(), visible="MIG-cccc")
    assert not inventory.available and "leaves none of the 2 GPU(s) visible" in inventory.reason
    (note,) = inventory.notes
    assert "MIG-aaaaaaaa-1111-2222-3333-444444444444" in note and "MIG-bbbbbbbb" in note


def test_memory_used_is_nvml_v2_like_nvidia_smi_with_v1_as_fallback():
    fake = FakeNvml.with_gpus(1)
    fake.gpus[0].reserved_mib = 512  # v1 would count the driver's reservation as used: 1,536 MiB
    nvml = Nvml(fake)
    (sample,) = read_samples(nvml, read_inventory(nvml, visible_devices=None))
    assert sample.memory_used_mib == 1024 and pynvml.nvmlMemory_v2 in fake.memory_versions

    old = FakeNvml.with_gpus(1, memory_v2=False)  # an nvidia-ml-py without the `version` argument
    old.gpus[0].reserved_mib = 512
    nvml = Nvml(old)
    inventory = read_inventory(nvml, visible_devices=None)
    assert [s.memory_used_mib for s in read_samples(nvml, inventory)] == [1536], "v1's figure, not n/a"
    asked = old.calls["nvmlDeviceGetMemoryInfo"]
    read_samples(nvml, inventory)
    assert old.calls["nvmlDeviceGetMemoryInfo"] == asked + 1, "v2 is not asked again once it failed"


# --- guarded queries: n/a fields, lost GPUs, init once ---------------------------------------------

def test_a_field_the_gpu_does_not_support_is_na_and_the_rest_still_shows():
    fake = FakeNvml.with_gpus(2)
    fake.gpus[1].unsupported = {"nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage",
                                "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses",
                                "nvmlDeviceGetCudaComputeCapability"}
    nvml = Nvml(fake)
    inventory = read_inventory(nvml, visible_devices=None)
    first, second = read_samples(nvml, inventory)
    assert inventory.gpus[1].capability is None and inventory.gpus[1].name == "NVIDIA A100-SXM4-40GB"
    assert (second.temperature_c, second.power_w, second.processes) == (None, None, None)
    assert second.memory_used_mib == 2048 and second.power_limit_w == 400.0 and not second.lost
    assert first.temperature_c == 55 and first.power_w == 250.0 and first.processes == ()
    row = next(line for line in format_table(inventory, (first, second)).splitlines() if line.startswith("  1 "))
    assert "2,048 / 40,960 MiB (5%)" in row and "n/a / 400 W" in row and row.split()[-4] == "n/a"
    entry = to_json(inventory, (first, second))["gpus"][1]
    assert entry["temperature_c"] is None and entry["compute_capability"] is None and entry["processes"] is None
    assert machine_from_inventory(inventory, 2).gpus[1].capability == (0, 0), "unknown: no bf16 promised"


def test_a_lost_gpu_is_marked_and_never_hides_the_others():
    fake = FakeNvml.with_gpus(3)
    fake.gpus[1].lost = True
    nvml = Nvml(fake)
    inventory = read_inventory(nvml, visible_devices=None)
    assert [g.lost for g in inventory.gpus] == [False, True, False]
    samples = read_samples(nvml, inventory)
    assert [s.lost for s in samples] == [False, True, False]
    assert samples[2].memory_used_mib == 3072 and samples[1].memory_used_mib is None
    table = format_table(inventory, samples)
    assert "LOST: fell off the bus" in table and "3,072 / 40,960 MiB" in table
    assert to_json(inventory, samples)["gpus"][1]["lost"] is True
    machine = machine_from_inventory(inventory, 4)
    assert [g.index for g in machine.gpus] == [0, 2], "a lost GPU is not offered, ids keep their meaning"


def test_a_torch_without_cuda_means_no_usable_gpu_even_with_nvidia_gpus():
    machine = machine_from_inventory(inventory_of(FakeNvml.with_gpus(2)), 4, torch_cuda=False)
    assert machine.gpus == () and machine.gpu_note == "NVIDIA GPU present but this torch build has no CUDA"


def test_a_gpu_lost_while_sampling_is_marked_and_not_asked_again():
    fake = FakeNvml.with_gpus(2)
    sampler = GpuSampler(history=5, backend=fake)
    assert not any(s.lost for s in sampler.sample_once())
    fake.gpus[0].lost = True
    after = sampler.sample_once()
    assert [s.lost for s in after] == [True, False] and after[1].memory_used_mib == 2048
    asked = fake.calls["nvmlDeviceGetMemoryInfo"]
    third = sampler.sample_once()
    assert third[0].lost and fake.calls["nvmlDeviceGetMemoryInfo"] == asked + 1, "only GPU 1 is asked now"


def test_nvml_is_initialised_once_and_shut_down_once():
    fake = FakeNvml.with_gpus(2)
    sampler = GpuSampler(backend=fake)
    sampler.inventory
    for _ in range(3):
        sampler.sample_once()
    assert fake.calls["nvmlInit"] == 1
    nvml = Nvml(fake)
    assert nvml.open() and nvml.open()
    nvml.close()
    nvml.close()
    assert fake.calls["nvmlInit"] == 2 and fake.calls["nvmlShutdown"] == 1


def test_nvml_is_shut_down_when_the_process_exits():
    code = ("from tests.fake_nvml import FakeNvml\nfrom tui_trainer.hardware import GpuSampler\n"
            "fake = FakeNvml.with_gpus(2); fake.on_shutdown = lambda: print('shutdown', flush=True)\n"
            "GpuSampler(backend=fake).sample_once(); print('sampled', flush=True)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.split() == ["sampled", "shutdown"], result.stderr


@pytest.mark.parametrize("error, reason", [
    (pynvml.NVMLError_LibraryNotFound(), "no NVIDIA GPU detected: NVML library not found"),
    (pynvml.NVMLError_DriverNotLoaded(), "no NVIDIA GPU detected: NVIDIA driver not loaded"),
    (pynvml.NVMLError_NoPermission(), "no NVIDIA GPU detected: no permission to query NVML"),
])
def test_an_nvml_that_cannot_start_gives_a_reason_a_user_can_act_on(error, reason):
    fake = FakeNvml.with_gpus(2, init_error=error)
    inventory = inventory_of(fake)
    assert inventory.gpus == () and inventory.reason == reason
    assert "nvmlDeviceGetCount" not in fake.calls
    out = io.StringIO()
    assert run(parse(), backend=fake, out=out) == 0
    assert out.getvalue().splitlines()[0] == reason


def test_a_driver_with_no_gpus_says_so():
    assert inventory_of(FakeNvml([])).reason == "no NVIDIA GPU detected: the NVIDIA driver reports no GPUs"


# --- the table and JSON a user reads ---------------------------------------------------------------

def test_gpus_table_shows_memory_utilisation_temperature_power_and_processes():
    fake = FakeNvml.with_gpus(2)
    fake.gpus[0].processes = [(4242, "/usr/bin/python3", 2000), (77, "/opt/conda/bin/torchrun", None)]
    fake.gpus[0].used_mib, fake.gpus[0].util_gpu, fake.gpus[0].temperature_c = 30720, 97, 81
    out = io.StringIO()
    assert run(parse(), backend=fake, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "NVIDIA driver 550.54.15, CUDA 12.4"
    assert lines[1].split() == ["GPU", "phys", "name", "memory", "used", "/", "total", "util", "mem", "temp",
                                "power", "/", "limit"]
    assert lines[2].split() == ["0", "0", "NVIDIA", "A100-SXM4-40GB", "30,720", "/", "40,960", "MiB", "(75%)",
                                "97%", "20%", "81", "C", "250", "/", "400", "W"]
    assert lines[3].split() == ["pid", "77", "torchrun", "n/a"]
    assert lines[4].split() == ["pid", "4242", "python3", "2,000", "MiB"]
    assert lines[5].split()[:2] == ["1", "1"]


def test_gpus_json_carries_the_same_numbers_as_the_table():
    fake = FakeNvml.with_gpus(3)
    fake.gpus[2].processes = [(4242, "python3", 2000)]
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUDA_VISIBLE_DEVICES", "2")
        assert run(parse("--json"), backend=fake, out=out) == 0
    data = json.loads(out.getvalue())
    assert data["available"] and data["cuda_version"] == "12.4" and data["hidden_physical_indices"] == [0, 1]
    (gpu,) = data["gpus"]
    assert gpu["index"] == 0 and gpu["physical_index"] == 2 and gpu["uuid"] == fake.gpus[2].uuid
    assert (gpu["memory_used_mib"], gpu["memory_total_mib"], gpu["memory_percent"]) == (3072, 40960, 7.5)
    assert (gpu["utilization_gpu_percent"], gpu["temperature_c"], gpu["power_w"]) == (50, 55, 250.0)
    assert gpu["processes"] == [{"pid": 4242, "name": "python3", "memory_mib": 2000}]
    assert gpu["compute_capability"] == "8.0" and gpu["lost"] is False


def test_gpus_watch_redraws_until_ctrl_c_and_exits_0():
    code = ("import argparse, sys\nfrom tests.fake_nvml import FakeNvml\n"
            "from tui_trainer.cli.gpus import add_arguments, run\n"
            "parser = argparse.ArgumentParser(); add_arguments(parser)\n"
            "args = parser.parse_args(['--watch', '--interval', '0.05'])\n"
            "sys.exit(run(args, backend=FakeNvml.with_gpus(2)))")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        frames = 0
        for line in process.stdout:  # Ctrl-C only once the third frame is on screen: the watch is running
            frames += line.startswith("# ")
            if frames == 3:
                break
        assert frames == 3, f"the watch ended after {frames} frames: {process.stderr.read()}"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)  # generous: a loaded machine, not a slow exit
        assert process.returncode == 0 and "Traceback" not in err and err == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_gpus_watch_json_prints_one_object_per_refresh():
    class StopAfter(io.StringIO):
        def write(self, text):  # the user presses Ctrl-C after the third refresh
            if self.getvalue().count("\n") >= 3:
                raise KeyboardInterrupt
            return super().write(text)

    out = StopAfter()
    assert run(parse("--json", "--watch", "--interval", "0.02"), backend=FakeNvml.with_gpus(2), out=out) == 0
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(objects) == 3 and all(len(o["gpus"]) == 2 for o in objects)
    assert objects[0]["gpus"][0]["timestamp"] < objects[2]["gpus"][0]["timestamp"]


# --- the sampler -----------------------------------------------------------------------------------

def test_sampler_history_is_bounded_and_keeps_the_newest():
    fake = FakeNvml.with_gpus(2)
    sampler = GpuSampler(history=3, backend=fake)
    for used in (100, 200, 300, 400, 500):
        fake.gpus[1].used_mib = used
        sampler.sample_once()
    assert [s.memory_used_mib for s in sampler.history(1)] == [300, 400, 500]
    assert [s.memory_used_mib for s in sampler.history(0)] == [1024, 1024, 1024]
    assert sampler.history(7) == ()
    assert [s.index for s in sampler.latest()] == [0, 1] and sampler.latest()[1].memory_used_mib == 500


def test_sampler_polls_in_the_background_and_stops_at_once():
    fake = FakeNvml.with_gpus(2)
    sampler = GpuSampler(interval=0.02, history=4, backend=fake)
    assert sampler.latest() == ()
    sampler.start()
    assert sampler.wait(4, timeout=10), "five rounds at 50 Hz"
    assert len(sampler.history(0)) == 4 and sampler.running
    sampler.stop()
    assert not sampler.running and not any(t.name == "gpu-sampler" for t in threading.enumerate())
    rounds = sampler.rounds
    assert not sampler.wait(rounds, timeout=0.2) and sampler.rounds == rounds, "no sampling after stop()"


def test_sampler_stop_does_not_wait_out_the_interval():
    sampler = GpuSampler(interval=3600, backend=FakeNvml.with_gpus(1))
    sampler.start()
    assert sampler.wait(0, timeout=60)
    thread = next(t for t in threading.enumerate() if t.name == "gpu-sampler")
    sampler.stop(timeout=60)  # returns when the thread has ended: woken by stop(), not by its hour's interval
    assert not thread.is_alive() and not sampler.running
    sampler.start()  # and it can be started again
    assert sampler.wait(1, timeout=10)
    sampler.stop()


def test_sampler_reads_are_safe_while_it_samples():
    fake = FakeNvml.with_gpus(4)
    sampler = GpuSampler(interval=0.001, history=8, backend=fake)
    sampler.start()
    try:
        deadline = time.monotonic() + 120  # generous: only a stuck sampler takes this long for 20 rounds
        while sampler.rounds <= 20:  # read while it writes, for 20 rounds
            latest = sampler.latest()
            assert len(latest) in (0, 4)
            assert len(sampler.history(3)) <= 8
            assert time.monotonic() < deadline, f"only {sampler.rounds} rounds in 120 s"
    finally:
        sampler.stop()
