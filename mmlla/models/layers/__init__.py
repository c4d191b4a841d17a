from .max_filter_3d import MaxFiltering3D

__all__ = ['MaxFiltering3D']
