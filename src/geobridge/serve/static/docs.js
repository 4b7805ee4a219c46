// Offline API reference: render /openapi.json as a list of operations with their request bodies.
"use strict";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function resolve(spec, schema) {
  if (schema && schema.$ref) {
    return schema.$ref.split("/").slice(1).reduce((node, key) => node[key], spec);
  }
  return schema;
}

async function render() {
  const spec = await (await fetch("/openapi.json")).json();
  const root = document.getElementById("operations");
  root.appendChild(element("p", "", `${spec.info.title} ${spec.info.version}: ${spec.info.description || ""}`));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = element("section", "op");
      const title = element("h2");
      title.append(element("span", "method", method.toUpperCase()), element("code", "", path));
      box.appendChild(title);
      if (op.summary) box.appendChild(element("p", "", op.summary));
      const params = op.parameters || [];
      if (params.length) {
        box.appendChild(element("h3", "", "Parameters"));
        const list = element("ul");
        for (const p of params) list.appendChild(element("li", "", `${p.name} (${p.in}${p.required ? ", required" : ""})`));
        box.appendChild(list);
      }
      if (op.requestBody) {
        box.appendChild(element("h3", "", "Request body"));
        for (const [type, media] of Object.entries(op.requestBody.content)) {
          box.appendChild(element("p", "", type));
          box.appendChild(element("pre", "", JSON.stringify(resolve(spec, media.schema), null, 2)));
        }
      }
      const responses = Object.entries(op.responses || {}).map(([code, r]) => `${code} ${r.description || ""}`);
      if (responses.length) {
        box.appendChild(element("h3", "", "Responses"));
        const list = element("ul");
        for (const r of responses) list.appendChild(element("li", "", r));
        box.appendChild(list);
      }
      root.appendChild(box);
    }
  }
}

render().catch((err) => {
  document.getElementById("operations").textContent = `cannot load /openapi.json: ${err.message}`;
});
