# Everything a tiny CPU detector needs besides its model, on the synthetic
# CrowdHuman-format crowds: the data, and tiny_cpu.py (the tiny schedule,
# the runtime and the tiny backbone / neck / head pieces to merge into a
# model).
_base_ = ['./datasets/synthetic_crowdhuman.py', './tiny_cpu.py']
