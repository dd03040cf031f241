"""The house's rules, read from the imports: the on-device packages are
leaves that any component, `predict`, the bench and a second model may lean
on; what runs on the device carries no training stack."""

import ast
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the device side may import besides the standard library.
_DEVICE_THIRD_PARTY = {'numpy', 'PIL', 'ai_edge_litert'}


def _imports(path, names=False):
  """Every module a file imports, with its line; with `names`, `from a
  import b` as `a.b` (b may be a module or a name)."""
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, node.lineno
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      if not names:
        yield node.module, node.lineno
        continue
      for alias in node.names:
        yield f'{node.module}.{alias.name}', node.lineno


def _package_files(*parts):
  folder = os.path.join(REPO_ROOT, *parts)
  return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                if name.endswith('.py'))


def _leaf_breaks(package, allowed_local, third_party, names=False):
  """Imports of `components/<package>` outside `allowed_local` project
  modules, the standard library and `third_party(path)` (`names`: a
  `from X import Y` is X.Y)."""
  import sys  # pylint: disable=g-import-not-at-top
  broken = []
  for path in _package_files('components', package):
    for module, line in _imports(path, names=names):
      top = module.split('.')[0]
      if top in ('components', 'pipeline'):
        ok = module.startswith(allowed_local)
      else:
        ok = top in sys.stdlib_module_names or top in third_party(path)
      if not ok:
        broken.append(f'{os.path.relpath(path, REPO_ROOT)}:{line} imports '
                      f'{module}')
  return broken


def test_the_on_device_package_imports_only_itself_common_and_its_runtime():
  # And the front end's typed description (the manifest's front end is a
  # FrontEnd), which imports nothing but the standard library and common.
  broken = _leaf_breaks('ondevice',
                        ('components.ondevice', 'components.common',
                         'components.frontend.spec'),
                        lambda path: _DEVICE_THIRD_PARTY)
  assert not broken, broken
  spec = os.path.join(REPO_ROOT, 'components', 'frontend', 'spec.py')
  package = os.path.join(REPO_ROOT, 'components', 'frontend', '__init__.py')
  for path in (spec, package):
    for module, line in _imports(path):
      assert module.startswith(('components.common', 'components.frontend.'
                                'spec')) or module.split('.')[0] in (
                                    sys.stdlib_module_names), (
                                        f'{path}:{line} imports {module}')


def test_the_rule_sees_a_forbidden_import(tmp_path):
  path = tmp_path / 'bad.py'
  path.write_text('import tensorflow as tf\n'
                  'from components.tflite_pusher import conversion\n')
  assert [m for m, _ in _imports(str(path))] == [
      'tensorflow', 'components.tflite_pusher']


def test_the_tflite_library_imports_no_component():
  broken = []
  for path in _package_files('components', 'tflite'):
    for module, line in _imports(path):
      if module.split('.')[0] in ('components', 'pipeline') and not (
          module.startswith(('components.common', 'components.ondevice',
                             'components.tflite'))
          and not module.startswith('components.tflite_pusher')):
        broken.append(f'{os.path.relpath(path, REPO_ROOT)}:{line} imports '
                      f'{module}')
  assert not broken, broken


def test_the_cloud_library_imports_no_component():
  # The cloud phase's serving model and its push: the front end, the
  # feature names and storage, never a component. Its model server runs in
  # KServe's environment, where TFX is absent: KServe and the web stack
  # under it there only; Vertex AI's library only where it deploys.
  def runtimes(path):
    if path.endswith(('server.py', 'kserve_model.py')):
      return {'numpy', 'tensorflow', 'kserve', 'fastapi'}
    if path.endswith('vertex_endpoint.py'):
      return {'google'}
    return {'numpy', 'tensorflow'}
  broken = _leaf_breaks(
      'cloud', ('components.cloud', 'components.common',
                'components.frontend', 'components.modules.features'),
      runtimes, names=True)
  assert not broken, broken


def test_no_component_imports_the_pipeline():
  broken = []
  for folder, _, names in os.walk(os.path.join(REPO_ROOT, 'components')):
    for name in names:
      if not name.endswith('.py'):
        continue
      path = os.path.join(folder, name)
      broken += [f'{os.path.relpath(path, REPO_ROOT)}:{line} imports {module}'
                 for module, line in _imports(path)
                 if module.split('.')[0] == 'pipeline']
  assert not broken, broken


def test_the_front_end_package_imports_only_itself_common_and_its_math():
  # TensorFlow only in the graph's module: ingest and predict draw
  # without it.
  broken = _leaf_breaks(
      'frontend', ('components.frontend', 'components.common'),
      lambda path: {'numpy', 'scipy'} | (
          {'tensorflow'} if path.endswith('graph.py') else set()))
  assert not broken, broken


def _python_files(*parts):
  return _python_files_under(REPO_ROOT, *parts)


# What a component's folder may import of `components`: itself, the leaf
# packages, the contracts, and the feature names every stage shares
# (`modules/features.py`, TFX's one features file); the model search also
# its module code (`modules/search.py`, as the Trainer runs
# `modules/trainer.py`).
_SHARED = ('components.common', 'components.frontend', 'components.ondevice',
           'components.tflite', 'components.cloud', 'components.contracts',
           'components.modules.features', 'components.music')
_ALSO = {'model_search': ('components.modules.search',),
         'modules': ('components.modules',)}


def _component_import_breaks(root):
  broken = []
  for entry in sorted(os.listdir(os.path.join(root, 'components'))):
    folder = os.path.join(root, 'components', entry)
    if entry.startswith(('_', '.')) or entry in (
        'common', 'frontend', 'ondevice', 'tflite', 'cloud', 'music',
        'contracts.py'):
      continue
    if os.path.isdir(folder):
      paths = sorted(os.path.join(folder, name)
                     for name in os.listdir(folder) if name.endswith('.py'))
    elif entry.endswith('.py'):  # a component in one file (the data gate)
      paths, entry = [folder], entry[:-3]
    else:
      continue
    own = f'components.{entry}'
    for path in paths:
      for module, line in _imports(path, names=True):
        if module.split('.')[0] != 'components':
          continue
        if module == own or module.startswith(
            (own + '.',) + _SHARED + _ALSO.get(entry, ())):
          continue
        broken.append(f'{os.path.relpath(path, root)}:{line} imports '
                      f'{module}')
  return broken


def test_components_import_each_other_only_through_the_shared_packages():
  broken = _component_import_breaks(REPO_ROOT)
  assert not broken, broken


def test_the_component_rule_sees_a_crossing(tmp_path):
  folder = tmp_path / 'components' / 'pusher'
  folder.mkdir(parents=True)
  (folder / 'x.py').write_text('from components.span_window import executor\n'
                               'from components.tflite import budget\n'
                               'from components.pusher import stages\n')
  assert _component_import_breaks(str(tmp_path)) == [
      'components/pusher/x.py:1 imports components.span_window.executor']


def test_settings_import_no_runner_and_runners_no_command_line():
  broken = []
  for part, forbidden in (('settings', 'pipeline.runners'),
                          ('runners', 'pipeline.cli')):
    for path in _python_files('pipeline', part):
      broken += [f'{os.path.relpath(path, REPO_ROOT)}:{line} imports '
                 f'{module}' for module, line in _imports(path)
                 if module.startswith(forbidden)]
  assert not broken, broken


def test_the_music_encoder_is_a_leaf():
  broken = _leaf_breaks('music', ('components.music', 'components.common'),
                        lambda path: {'numpy', 'tensorflow'})
  assert not broken, broken


def test_phase_two_is_a_module_level_kserve_model_with_its_handlers():
  # As KServe's own examples: a class at module level, whose handlers
  # each do one step, not a class built inside a function.
  import ast  # pylint: disable=g-import-not-at-top
  path = os.path.join(REPO_ROOT, 'components', 'cloud', 'kserve_model.py')
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read())
  found = {node.name: node for node in tree.body
           if isinstance(node, ast.ClassDef)}
  model = found.get('PhaseTwoModel')
  assert model is not None, 'kserve_model.py defines no PhaseTwoModel'
  assert [ast.unparse(base) for base in model.bases] == ['kserve.Model']
  handlers = {node.name for node in model.body
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
  assert {'load', 'preprocess', 'predict', 'postprocess'} <= handlers
  server = os.path.join(REPO_ROOT, 'components', 'cloud', 'server.py')
  with open(server, encoding='utf-8') as f:
    nested = [node.name for node in ast.walk(ast.parse(f.read()))
              if isinstance(node, ast.ClassDef) and any(
                  'Model' in ast.unparse(base) for base in node.bases)]
  assert not nested, f'server.py builds model classes: {nested}'


def _project_imports(path):
  """The project modules (`components...`, `pipeline...`) a file imports
  anywhere in it, with their lines."""
  return [(module, line) for module, line in _imports(path, names=True)
          if module.split('.')[0] in ('components', 'pipeline')]


def test_the_ground_floor_imports_nothing_above_it():
  # components/common is what everything stands on: it leans on nothing
  # of the project but itself, wherever the import is written.
  broken = [f'{os.path.relpath(path, REPO_ROOT)}:{line} imports {module}'
            for path in _package_files('components', 'common')
            for module, line in _project_imports(path)
            if not module.startswith('components.common')]
  assert not broken, broken


def test_the_contracts_depend_on_no_component():
  # The names every reader shares: the ground floor and the TFLite
  # library's result names (whose figures it lists), nothing else.
  path = os.path.join(REPO_ROOT, 'components', 'contracts.py')
  broken = [f'components/contracts.py:{line} imports {module}'
            for module, line in _project_imports(path)
            if not module.startswith(('components.common',
                                      'components.tflite.results'))]
  assert not broken, broken


def _components_in_one_file(root):
  return {f'components.{name[:-3]}'
          for name in os.listdir(os.path.join(root, 'components'))
          if name.endswith('.py') and name not in ('__init__.py',
                                                   'contracts.py')}


def _runner_breaks(root):
  """Imports, in pipeline/runners, of a component's executor or its
  definition (a TFX component class, or a component in one file)."""
  whole = _components_in_one_file(root)
  broken = []
  for path in _python_files_under(root, 'pipeline', 'runners'):
    for module, line in _project_imports(path):
      parts = module.split('.')
      if parts[0] != 'components':
        continue
      if ({'executor', 'component'} & set(parts[2:])
          or '.'.join(parts[:2]) in whole):
        broken.append(f'{os.path.relpath(path, root)}:{line} imports '
                      f'{module}')
  return broken


def _python_files_under(root, *parts):
  folder = os.path.join(root, *parts)
  for base, _, names in os.walk(folder):
    for name in sorted(names):
      if name.endswith('.py'):
        yield os.path.join(base, name)


def test_the_runners_import_no_executor_and_no_component():
  # The checks before a run use the rules' own modules (the window's,
  # the drift thresholds'), never an executor that drags TFX along.
  broken = _runner_breaks(REPO_ROOT)
  assert not broken, broken


def test_the_runner_rule_sees_an_executor_and_a_component(tmp_path):
  (tmp_path / 'components').mkdir()
  (tmp_path / 'components' / 'data_gate.py').write_text('')
  runners = tmp_path / 'pipeline' / 'runners'
  runners.mkdir(parents=True)
  (runners / 'pre.py').write_text(
      'from components.span_window import executor\n'
      'def f():\n'
      '  from components import data_gate\n'
      '  from components.span_window import window\n'
      '  from components.common import drift\n')
  assert _runner_breaks(str(tmp_path)) == [
      'pipeline/runners/pre.py:1 imports components.span_window.executor',
      'pipeline/runners/pre.py:3 imports components.data_gate']


def _import_loops(root):
  """Groups of project modules that import each other at module level,
  round in a loop (each group sorted; none in a sound house)."""
  modules = {}
  for top in ('components', 'pipeline'):
    for path in _python_files_under(root, top):
      name = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
      modules[name[:-len('.__init__')] if name.endswith('.__init__')
              else name] = path
  graph = {}
  for name, path in modules.items():
    with open(path, encoding='utf-8') as f:
      tree = ast.parse(f.read(), path)
    found = set()
    for node in tree.body:  # what runs on import, not inside functions
      if isinstance(node, ast.Import):
        found.update(alias.name for alias in node.names)
      elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        for alias in node.names:
          whole = f'{node.module}.{alias.name}'
          found.add(whole if whole in modules else node.module)
    graph[name] = sorted(found & set(modules) - {name})
  # Tarjan's strongly connected components, iteratively.
  index, low, on_stack, stack, loops = {}, {}, set(), [], []
  for start in sorted(graph):
    if start in index:
      continue
    work = [(start, iter(graph[start]))]
    index[start] = low[start] = len(index)
    stack.append(start)
    on_stack.add(start)
    while work:
      node, edges = work[-1]
      for target in edges:
        if target not in index:
          index[target] = low[target] = len(index)
          stack.append(target)
          on_stack.add(target)
          work.append((target, iter(graph[target])))
          break
        if target in on_stack:
          low[node] = min(low[node], index[target])
      else:
        work.pop()
        if work:
          low[work[-1][0]] = min(low[work[-1][0]], low[node])
        if low[node] == index[node]:
          group = []
          while True:
            member = stack.pop()
            on_stack.discard(member)
            group.append(member)
            if member == node:
              break
          if len(group) > 1:
            loops.append(sorted(group))
  return loops


def test_no_modules_import_each_other_round_in_a_loop():
  assert _import_loops(REPO_ROOT) == []


def test_the_loop_rule_sees_a_loop(tmp_path):
  package = tmp_path / 'components' / 'common'
  package.mkdir(parents=True)
  (package / 'a.py').write_text('from components import contracts\n')
  (tmp_path / 'components' / 'contracts.py').write_text(
      'from components.tflite import results\n')
  (tmp_path / 'components' / 'tflite').mkdir()
  (tmp_path / 'components' / 'tflite' / 'results.py').write_text(
      'from components.common import a\n')
  (tmp_path / 'components' / 'tflite' / 'free.py').write_text(
      'def f():\n  from components.tflite import results\n')
  assert _import_loops(str(tmp_path)) == [[
      'components.common.a', 'components.contracts',
      'components.tflite.results']]


def _architecture_breaks(root):
  """What `docs/architecture.md` misses or names wrongly: a folder (or a
  component in one file) of components/ or pipeline/ it does not name, a
  path it names that does not exist, a node of the pipeline its picture
  leaves out, or a node in the picture the pipeline does not have."""
  import re  # pylint: disable=g-import-not-at-top
  with open(os.path.join(root, 'docs', 'architecture.md'),
            encoding='utf-8') as f:
    page = f.read()
  broken = []
  for top in ('components', 'pipeline'):
    for name in sorted(os.listdir(os.path.join(root, top))):
      path = os.path.join(root, top, name)
      if name.startswith(('_', '.')):
        continue
      if os.path.isdir(path):
        named = f'`{top}/{name}/`'
      elif name.endswith('.py'):
        named = f'`{top}/{name}`'
      else:
        continue
      if named not in page:
        broken.append(f'not named: {named}')
  for named in re.findall(r'`((?:components|pipeline|tests|schema|bench)'
                          r'/[\w/.]*)`', page):
    if not os.path.exists(os.path.join(root, named)):
      broken.append(f'no such path: {named}')
  picture = page.split('```')[1]
  nodes = _pipeline_nodes(root)
  drawn = set(re.findall(r'\b[A-Z][A-Za-z]+\b', picture))
  broken += [f'not in the picture: {node}' for node in sorted(nodes - drawn)]
  suffixes = ('Gen', 'Validator', 'Gate', 'Span', 'Window', 'Transform',
              'Trainer', 'Evaluator', 'Check', 'Pusher', 'Converter',
              'Search')
  broken += [f'no such node: {word}' for word in sorted(drawn - nodes)
             if word.endswith(suffixes)]
  return broken


def _pipeline_nodes(root):
  """The node ids `components/contracts.py` gives the pipeline's nodes
  (each class's NODE), read from its source."""
  with open(os.path.join(root, 'components', 'contracts.py'),
            encoding='utf-8') as f:
    tree = ast.parse(f.read())
  nodes = set()
  for node in tree.body:
    if isinstance(node, ast.ClassDef):
      for item in node.body:
        if (isinstance(item, ast.Assign) and len(item.targets) == 1
            and getattr(item.targets[0], 'id', None) == 'NODE'
            and isinstance(item.value, ast.Constant)):
          nodes.add(item.value.value)
  return nodes


def test_the_architecture_page_is_in_step_with_the_house():
  broken = _architecture_breaks(REPO_ROOT)
  assert not broken, broken
  assert len(_pipeline_nodes(REPO_ROOT)) >= 18


def test_the_architecture_rule_sees_what_the_page_misses(tmp_path):
  for folder in ('components/common', 'components/newcomer', 'pipeline',
                 'docs'):
    (tmp_path / folder).mkdir(parents=True, exist_ok=True)
  (tmp_path / 'components' / 'contracts.py').write_text(
      "class Trainer:\n  NODE = 'Trainer'\n\n"
      "class Pusher:\n  NODE = 'Pusher'\n")
  (tmp_path / 'docs' / 'architecture.md').write_text(
      '```\nTrainer -> OldPusher\n```\n'
      '`components/common/` `components/contracts.py` '
      '`components/gone/x.py`\n')
  assert _architecture_breaks(str(tmp_path)) == [
      'not named: `components/newcomer/`',
      'no such path: components/gone/x.py',
      'not in the picture: Pusher',
      'no such node: OldPusher']
