from setuptools import find_packages, setup


def get_version() -> str:
    namespace: dict = {}
    with open('mmlla/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(path: str) -> list:
    """The requirement lines of ``path`` (comments and blanks skipped)."""
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='mmlla',
    version=get_version(),
    description='Loss-aware (LLA) and one-to-one (DeFCN/POTO) label '
    'assignment for crowded detection, as an MMDetection 3.x plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'demo')),
    python_requires='>=3.8',
    # Ranges here, exact pins in requirements/runtime.txt: a GPU user keeps
    # the CUDA torch/mmcv they already have.
    install_requires=[
        'mmengine>=0.10.7,<1.0.0',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmdet>=3.3.0,<3.4.0',
        'numpy',
        'scipy',
        'pycocotools',
        'matplotlib',
    ],
    extras_require={
        'tests': ['pytest'],
        # ONNX export / inference (README, "Deploy"), pinned in one place
        'deploy': read_requirements('requirements/deploy.txt'),
    },
    license='Apache License 2.0',
    zip_safe=False,
)
