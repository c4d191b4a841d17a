# tiny_synthetic.py on the synthetic CityPersons-format crowds: the same
# tiny_cpu.py (schedule, runtime, tiny model pieces) with the synthetic
# CityPersons data.
_base_ = ['./datasets/synthetic_citypersons.py', './tiny_cpu.py']
