# Sourced by benchmarks/gpu.sh and gpu_train.sh (needs PY and LOG): installs carried wheels
# (.whl/, from benchmarks/gpu_wheels.sh) into /tmp/site and puts them and this checkout on
# PYTHONPATH, for a GPU machine that has torch but not this project's other packages.
if compgen -G ".whl/*.whl" >/dev/null; then
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl >/tmp/octseg-wheels.log 2>&1; then
        echo "installing .whl/ failed:" | tee -a "$LOG"
        tail -n 5 /tmp/octseg-wheels.log | tee -a "$LOG"
    fi
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
