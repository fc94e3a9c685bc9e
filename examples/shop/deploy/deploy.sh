#!/bin/sh
# Deploys the artifact's site/ to ~/refline-example/ENV/current (a directory
# per environment stands in for a real target), switching atomically.
set -e
DEPLOY_ROOT="$HOME/refline-example/$REFLINE_ENV"
mkdir -p "$DEPLOY_ROOT"
rm -rf "$DEPLOY_ROOT/.next"
cp -R site "$DEPLOY_ROOT/.next"
echo "$REFLINE_ARTIFACT" > "$DEPLOY_ROOT/.next/ARTIFACT"
rm -rf "$DEPLOY_ROOT/current.old"
[ -d "$DEPLOY_ROOT/current" ] && mv "$DEPLOY_ROOT/current" "$DEPLOY_ROOT/current.old"
mv "$DEPLOY_ROOT/.next" "$DEPLOY_ROOT/current"
rm -rf "$DEPLOY_ROOT/current.old"
echo "deployed $(cut -c1-7 "$DEPLOY_ROOT/current/ARTIFACT") to $REFLINE_ENV"
