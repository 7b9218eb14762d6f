"""The reproduction demo's VGG-style network (demo_nets.py: ``vgg16_quarter``), registered on
import. The comparison itself, tools/reproduce.py's logic, is an application:
tools/reproduction/.
"""

from .demo_nets import register_demo_nets

register_demo_nets()
