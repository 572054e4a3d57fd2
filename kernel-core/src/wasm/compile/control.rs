//! Structured control flow: `block`, `loop`, `if`/`else`, `end`, the branches, `return`,
//! `unreachable`, and skipping dead code.
//!
//! Every frame owns a `next` block whose parameters are the frame's results: `end` and
//! branches to a `block`/`if` jump there with the values on top of the stack. A `loop` also
//! owns a `header` block whose parameters are the loop's parameters: branches to a loop jump
//! back there. An `if` branches to a `then` block and an `else` block; the `if`'s
//! parameters are SSA values that dominate both, so they stay on the stack for `then` and
//! are pushed again for `else`. An `if` without `else` gets an `else` block that passes its
//! parameters straight to `next` (validation makes the types agree).
//!
//! `next` blocks are sealed at their frame's `end` and loop headers at the loop's `end`:
//! every branch to them lies inside the frame. A frame's `next` is reachable only when
//! something jumps to it; when nothing does, the code after `end` is dead too.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use cranelift_codegen::ir::{self, Block, BlockArg, BlockCall, InstBuilder, JumpTableData, Value};
use wasmparser::{BlockType, BrTable, Operator};

use super::CompileError;
use super::environ::{ir_type, parser_ir_type};
use super::func_translator::FuncTranslator;
use super::traps::trap_code;
use crate::wasm::indices::TypeIndex;
use crate::wasm::trap::Trap;

/// What kind of construct a frame is.
pub(super) enum FrameKind {
    /// `block`, and the function body itself.
    Block,
    /// `loop`: branches go back to `header`.
    Loop {
        /// The first block of the loop body, with the loop's parameters.
        header: Block,
    },
    /// `if`, until its `end`.
    If {
        /// Where the condition goes when it is zero.
        else_block: Block,
        /// The `if`'s parameters, pushed again for the `else` arm.
        else_params: Vec<Value>,
        /// Whether `else` was seen.
        else_seen: bool,
    },
}

/// One enclosing construct.
pub(super) struct ControlFrame {
    kind: FrameKind,
    /// The continuation after `end`; its parameters are the frame's results.
    next: Block,
    num_params: usize,
    num_results: usize,
    /// The stack height below the frame's parameters.
    height: usize,
    /// Whether anything jumps to `next`.
    next_reachable: bool,
}

impl ControlFrame {
    /// Where a branch to this frame goes, and how many values it carries.
    fn branch_target(&self) -> (Block, usize) {
        match self.kind {
            FrameKind::Loop { header } => (header, self.num_params),
            _ => (self.next, self.num_results),
        }
    }
}

fn block_args(values: &[Value]) -> Vec<BlockArg> {
    values.iter().copied().map(BlockArg::Value).collect()
}

impl FuncTranslator<'_, '_> {
    /// Opens the function's own frame, whose `next` block returns the results.
    pub(super) fn push_function_frame(&mut self, results: &[ir::Type]) {
        let next = self.block_with_params(results);
        self.control.push(ControlFrame {
            kind: FrameKind::Block,
            next,
            num_params: 0,
            num_results: results.len(),
            height: 0,
            next_reachable: false,
        });
    }

    /// Translates a control operator; `Ok(false)` when `op` is not one.
    pub(super) fn translate_control(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        match op {
            Operator::Unreachable => {
                self.builder.ins().trap(trap_code(Trap::Unreachable));
                self.reachable = false;
            }
            Operator::Nop => {}
            Operator::Block { blockty } => self.begin_block(*blockty)?,
            Operator::Loop { blockty } => self.begin_loop(*blockty)?,
            Operator::If { blockty } => self.begin_if(*blockty)?,
            Operator::Else => self.translate_else()?,
            Operator::End => self.translate_end()?,
            Operator::Br { relative_depth } => self.branch(*relative_depth)?,
            Operator::BrIf { relative_depth } => self.branch_if(*relative_depth)?,
            Operator::BrTable { targets } => self.branch_table(targets)?,
            Operator::Return => {
                let count = self.control.first().map_or(0, |frame| frame.num_results);
                let results = self.peek_n(count)?.to_vec();
                self.builder.ins().return_(&results);
                self.reachable = false;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Handles an operator in dead code: only the nesting matters, until the `else` or
    /// `end` of the frame that became unreachable.
    pub(super) fn translate_unreachable(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                self.unreachable_depth += 1;
            }
            Operator::Else if self.unreachable_depth == 0 => self.translate_else()?,
            Operator::End if self.unreachable_depth == 0 => self.translate_end()?,
            Operator::End => self.unreachable_depth -= 1,
            // Other constructs with an `end` would upset the nesting count: refuse them here
            // as the live translation does.
            Operator::Try { .. }
            | Operator::TryTable { .. }
            | Operator::Catch { .. }
            | Operator::CatchAll
            | Operator::Delegate { .. } => return Err(CompileError::unsupported_operator(op)),
            _ => {}
        }
        Ok(())
    }

    /// The parameter and result types of a block type.
    fn block_types(
        &self,
        blockty: BlockType,
    ) -> Result<(Vec<ir::Type>, Vec<ir::Type>), CompileError> {
        match blockty {
            BlockType::Empty => Ok((Vec::new(), Vec::new())),
            BlockType::Type(ty) => Ok((Vec::new(), alloc::vec![parser_ir_type(ty)?])),
            BlockType::FuncType(index) => {
                let ty = self.env.func_type(TypeIndex::from_u32(index))?;
                let params = ty
                    .params
                    .iter()
                    .map(|t| ir_type(*t))
                    .collect::<Result<_, _>>()?;
                let results = ty
                    .results
                    .iter()
                    .map(|t| ir_type(*t))
                    .collect::<Result<_, _>>()?;
                Ok((params, results))
            }
        }
    }

    fn block_with_params(&mut self, types: &[ir::Type]) -> Block {
        let block = self.builder.create_block();
        for &ty in types {
            self.builder.append_block_param(block, ty);
        }
        block
    }

    fn frame_height(&self, params: usize) -> Result<usize, CompileError> {
        self.stack
            .len()
            .checked_sub(params)
            .ok_or_else(super::func_translator::stack_underflow)
    }

    fn begin_block(&mut self, blockty: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_types(blockty)?;
        let height = self.frame_height(params.len())?;
        let next = self.block_with_params(&results);
        self.control.push(ControlFrame {
            kind: FrameKind::Block,
            next,
            num_params: params.len(),
            num_results: results.len(),
            height,
            next_reachable: false,
        });
        Ok(())
    }

    fn begin_loop(&mut self, blockty: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_types(blockty)?;
        let height = self.frame_height(params.len())?;
        let header = self.block_with_params(&params);
        let next = self.block_with_params(&results);
        let args = block_args(&self.pop_n(params.len())?);
        self.builder.ins().jump(header, &args);
        self.builder.switch_to_block(header);
        let header_params = self.builder.block_params(header).to_vec();
        self.stack.extend(header_params);
        // Every back edge passes the header: the loop's preemption point.
        self.epoch_check()?;
        self.control.push(ControlFrame {
            kind: FrameKind::Loop { header },
            next,
            num_params: params.len(),
            num_results: results.len(),
            height,
            next_reachable: false,
        });
        Ok(())
    }

    fn begin_if(&mut self, blockty: BlockType) -> Result<(), CompileError> {
        let condition = self.pop()?;
        let (params, results) = self.block_types(blockty)?;
        let height = self.frame_height(params.len())?;
        let then_block = self.builder.create_block();
        let else_block = self.builder.create_block();
        let next = self.block_with_params(&results);
        self.builder
            .ins()
            .brif(condition, then_block, &[], else_block, &[]);
        self.builder.seal_block(then_block);
        self.builder.seal_block(else_block);
        self.builder.switch_to_block(then_block);
        let else_params = self.peek_n(params.len())?.to_vec();
        self.control.push(ControlFrame {
            kind: FrameKind::If {
                else_block,
                else_params,
                else_seen: false,
            },
            next,
            num_params: params.len(),
            num_results: results.len(),
            height,
            next_reachable: false,
        });
        Ok(())
    }

    fn translate_else(&mut self) -> Result<(), CompileError> {
        let reachable = self.reachable;
        let args = match self.control.last() {
            Some(frame) if reachable => block_args(self.peek_n(frame.num_results)?),
            _ => Vec::new(),
        };
        let frame = self
            .control
            .last_mut()
            .ok_or_else(|| CompileError::invalid("`else` outside `if`"))?;
        let FrameKind::If {
            else_block,
            else_params,
            else_seen: else_seen @ false,
        } = &mut frame.kind
        else {
            return Err(CompileError::invalid("`else` outside `if`"));
        };
        *else_seen = true;
        let else_block = *else_block;
        let else_params = core::mem::take(else_params);
        let (next, height) = (frame.next, frame.height);
        frame.next_reachable |= reachable;
        if reachable {
            self.builder.ins().jump(next, &args);
        }
        self.stack.truncate(height);
        self.stack.extend(else_params);
        self.builder.switch_to_block(else_block);
        self.reachable = true;
        Ok(())
    }

    fn translate_end(&mut self) -> Result<(), CompileError> {
        let mut frame = self
            .control
            .pop()
            .ok_or_else(|| CompileError::invalid("`end` with no open block"))?;
        if self.reachable {
            let args = block_args(self.peek_n(frame.num_results)?);
            self.builder.ins().jump(frame.next, &args);
            frame.next_reachable = true;
        }
        match frame.kind {
            FrameKind::Loop { header } => self.builder.seal_block(header),
            FrameKind::If {
                else_block,
                else_params,
                else_seen: false,
            } => {
                // No `else`: the false arm hands the parameters on as results.
                self.builder.switch_to_block(else_block);
                self.builder
                    .ins()
                    .jump(frame.next, &block_args(&else_params));
                frame.next_reachable = true;
            }
            FrameKind::If { .. } | FrameKind::Block => {}
        }
        self.stack.truncate(frame.height);
        self.builder.switch_to_block(frame.next);
        self.builder.seal_block(frame.next);
        let results = self.builder.block_params(frame.next).to_vec();
        self.stack.extend(results);
        self.reachable = frame.next_reachable;
        if self.control.is_empty() && self.reachable {
            // The end of the function body.
            let results = self.pop_n(frame.num_results)?;
            self.builder.ins().return_(&results);
        }
        Ok(())
    }

    /// The frame `depth` levels out, noting that a branch goes to it.
    fn branch_target(&mut self, depth: u32) -> Result<(Block, usize), CompileError> {
        let index = self
            .control
            .len()
            .checked_sub(1)
            .and_then(|last| last.checked_sub(depth as usize))
            .ok_or_else(|| CompileError::invalid("branch depth past the function"))?;
        let frame = &mut self.control[index];
        if !matches!(frame.kind, FrameKind::Loop { .. }) {
            frame.next_reachable = true;
        }
        Ok(frame.branch_target())
    }

    fn branch(&mut self, depth: u32) -> Result<(), CompileError> {
        let (target, count) = self.branch_target(depth)?;
        let args = block_args(self.peek_n(count)?);
        self.builder.ins().jump(target, &args);
        self.reachable = false;
        Ok(())
    }

    fn branch_if(&mut self, depth: u32) -> Result<(), CompileError> {
        let condition = self.pop()?;
        let (target, count) = self.branch_target(depth)?;
        let args = block_args(self.peek_n(count)?);
        let fallthrough = self.builder.create_block();
        self.builder
            .ins()
            .brif(condition, target, &args, fallthrough, &[]);
        self.builder.seal_block(fallthrough);
        self.builder.switch_to_block(fallthrough);
        Ok(())
    }

    fn branch_table(&mut self, table: &BrTable<'_>) -> Result<(), CompileError> {
        let index = self.pop()?;
        let depths = table.targets().collect::<Result<Vec<u32>, _>>()?;
        let default = table.default();
        let (_, count) = self.branch_target(default)?;
        let args = block_args(self.peek_n(count)?);

        // With values to carry, each distinct target gets a block that jumps there with
        // them; without, the table points at the targets directly.
        let mut edges: BTreeMap<u32, Block> = BTreeMap::new();
        let mut edge = |this: &mut Self, depth: u32| -> Result<Block, CompileError> {
            let (target, _) = this.branch_target(depth)?;
            if count == 0 {
                return Ok(target);
            }
            Ok(*edges
                .entry(depth)
                .or_insert_with(|| this.builder.create_block()))
        };
        let default_block = edge(self, default)?;
        let mut blocks = Vec::with_capacity(depths.len());
        for &depth in &depths {
            blocks.push(edge(self, depth)?);
        }
        let pool = &mut self.builder.func.dfg.value_lists;
        let default_call = BlockCall::new(default_block, [], pool);
        let calls: Vec<BlockCall> = blocks
            .iter()
            .map(|&block| BlockCall::new(block, [], pool))
            .collect();
        let jump_table = self
            .builder
            .create_jump_table(JumpTableData::new(default_call, &calls));
        self.builder.ins().br_table(index, jump_table);
        for (depth, block) in edges {
            let (target, _) = self.branch_target(depth)?;
            self.builder.seal_block(block);
            self.builder.switch_to_block(block);
            self.builder.ins().jump(target, &args);
        }
        self.reachable = false;
        Ok(())
    }
}
